"""``strongroom user-keys create|destroy|exists|count``: per-user keys of a server, over HTTP.

Clients of a Strongroom server's ``StrongroomUserKeys`` operations
(:class:`~strongroom.data.user_keys_http.HttpUserKeys`), signed with an AWS access key of
the tenant. As for ``strongroom encrypt``, everything not given on the command line comes
from the standard AWS chain: credentials, region (``AWS_DEFAULT_REGION``), endpoint
(``AWS_ENDPOINT_URL_KMS``) and CA bundle (``AWS_CA_BUNDLE``). AWS KMS itself has no user
keys: these commands need a Strongroom server.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import typer

from strongroom.cli.common import JsonOption, cli_errors, fail, print_json
from strongroom.cli.data import (
    KeyOption,
    open_input,
    with_kms_endpoint,
)
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice
from strongroom.cli.option_groups import option_group
from strongroom.data.user_keys_http import HttpUserKeys
from strongroom.errors import ValidationError

UserOption = Annotated[
    list[str] | None,
    typer.Option(
        "--user", "-u", help="End user id, 1 to 256 bytes (repeatable).", show_default=False
    ),
]
UsersFromOption = Annotated[
    str | None,
    typer.Option(
        "--users-from",
        help="Also read user ids from this file, one per line (- for stdin).",
        show_default=False,
    ),
]


@dataclass(frozen=True, slots=True)
class UserSelection:
    """The end users a command works on: ``--user`` (repeatable) and ``--users-from``."""

    users: list[str] | None = None
    users_from: str | None = None

    def ids(self) -> list[str]:
        """The ids of ``--user`` and then of ``--users-from`` (blank lines skipped).

        Fails (exit 1) when there are none.
        """
        ids = list(self.users or ())
        if self.users_from is not None:
            with open_input(self.users_from) as src:
                for number, raw in enumerate(src, 1):
                    try:
                        line = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError:
                        raise ValidationError(f"{self.users_from}:{number}: not UTF-8.") from None
                    if line.strip():
                        ids.append(line)
        if not ids:
            fail("give at least one --user USER (or --users-from FILE)")
        return ids


NO_USERS = UserSelection()
with_users = option_group(
    "who", UserSelection, {"users": UserOption, "users_from": UsersFromOption}
)
"""``--user``/``-u`` (repeatable) and ``--users-from FILE``."""


@contextlib.contextmanager
def client(endpoint: EndpointChoice) -> Iterator[HttpUserKeys]:
    """The user-key client of a command, closed at the end."""
    made = HttpUserKeys.connect(**endpoint.connect_kwargs())
    try:
        yield made
    finally:
        made.close()


@with_kms_endpoint
@with_users
def create_command(
    key: KeyOption,
    who: UserSelection = NO_USERS,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Create the keys of users that have none yet (10,000 per request)."""
    with cli_errors():
        ids = who.ids()
        with client(endpoint) as keys:
            created = keys.create_user_keys(key, ids)
    if json_output:
        print_json({"Key": key, "Requested": len(ids), "Created": created})
    else:
        sys.stdout.write(f"created {created} user key(s), {len(ids) - created} existed\n")


@with_kms_endpoint
@with_users
def destroy_command(
    key: KeyOption,
    who: UserSelection = NO_USERS,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Destroy users' keys: all their data under KEY becomes unreadable, for good."""
    with cli_errors():
        ids = who.ids()
        results: list[tuple[str, bool]] = []
        with client(endpoint) as keys:
            for user in ids:
                results.append((user, keys.destroy_user_key(key, user)))
    if json_output:
        print_json({"Key": key, "Users": [{"UserId": u, "Destroyed": done} for u, done in results]})
    else:
        sys.stdout.write(
            "".join(f"{'destroyed' if done else 'no key   '}  {u}\n" for u, done in results)
        )


@with_kms_endpoint
@with_users
def exists_command(
    key: KeyOption,
    who: UserSelection = NO_USERS,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Tell whether users have a key under KEY (created and not destroyed)."""
    with cli_errors():
        ids = who.ids()
        with client(endpoint) as keys:
            results = [(user, keys.user_key_exists(key, user)) for user in ids]
    if json_output:
        print_json({"Key": key, "Users": [{"UserId": u, "Exists": found} for u, found in results]})
    else:
        sys.stdout.write("".join(f"{'yes' if found else 'no '}  {u}\n" for u, found in results))


@with_kms_endpoint
def count_command(
    key: KeyOption,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Count the user keys under KEY."""
    with cli_errors(), client(endpoint) as keys:
        count = keys.count_user_keys(key)
    if json_output:
        print_json({"Key": key, "Count": count})
    else:
        sys.stdout.write(f"{count}\n")


def register(app: typer.Typer) -> None:
    """Add the ``user-keys`` group to the top-level app."""
    group = typer.Typer(
        help="Per-user keys of a Strongroom server (crypto-shredding): forget a user by "
        "destroying their key.",
        no_args_is_help=True,
        epilog="Examples:  strongroom user-keys create -k alias/users -u user-1 -u user-2   |"
        "   strongroom user-keys destroy -k alias/users -u user-1   |"
        "   strongroom user-keys count -k alias/users --json",
    )
    group.command(
        "create",
        epilog="Examples:  strongroom user-keys create -k alias/users -u user-1 -u user-2   |"
        "   strongroom user-keys create -k alias/users --users-from ids.txt --json",
    )(create_command)
    group.command(
        "destroy",
        epilog="Example:  strongroom user-keys destroy --key alias/users --user user-1 --json",
    )(destroy_command)
    group.command(
        "exists", epilog="Example:  strongroom user-keys exists -k alias/users -u user-1 -u user-2"
    )(exists_command)
    group.command(
        "count",
        epilog="Example:  strongroom user-keys count --key alias/users "
        "--endpoint https://kms.internal:8443 --ca-bundle ca.pem",
    )(count_command)
    app.add_typer(group, name="user-keys")
