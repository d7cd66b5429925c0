"""``strongroom backup ...``: encrypted, deduplicated backups keyed by a KMS (see backup/).

Each command takes ``--repo DIR|s3://BUCKET/PREFIX``; the repository's secrets come from
the KMS through the AWS KMS API (``--endpoint``, ``--region``, ``--profile``,
``--ca-bundle``, or the standard AWS chain), so the commands work against a Strongroom
server and against AWS KMS alike. Every command has ``--json``; long work shows a
progress bar on a terminal. This module holds the shared options, ``init`` and ``ls``;
backup_repo_create.py has create, backup_repo_read.py restore, diff and check, and
backup_repo_admin.py forget, prune and rotate-key.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strongroom.cli.context import cli_errors, fail, print_json, stderr_console, stdout_console
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice, endpoint_options
from strongroom.cli.option_groups import option_group

if TYPE_CHECKING:
    from strongroom.backup.repository import Repository
    from strongroom.backup.snapshot import Snapshot
    from strongroom.backup.store import RepoStore
    from strongroom.data.kms_direct import DirectKmsDataKeys
    from strongroom.data.kms_http import KmsHttpDataKeys

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ThreadsOption = Annotated[
    int, typer.Option("--threads", help="Worker threads (default: the number of CPUs).")
]
DEFAULT_THREADS = os.cpu_count() or 2
with_kms_endpoint = endpoint_options(
    "KMS endpoint URL (default: $AWS_ENDPOINT_URL_KMS, then AWS KMS).",
    profile_help="Named AWS profile for the KMS credentials.",
    ca_bundle_help="CA certificates to verify the KMS endpoint (default: $AWS_CA_BUNDLE).",
)
"""``--endpoint``, ``--region``, ``--profile``, ``--ca-bundle`` (as ``encrypt`` has them).

Defined here rather than imported from cli/data.py, which loads the stream formats and
boto3's client module: start-up time every backup command would pay."""


@dataclass(frozen=True, slots=True)
class RepoChoice:
    """``--repo`` and how to reach an S3 repository."""

    repo: str | None = None
    s3_endpoint: str | None = None
    s3_profile: str | None = None
    retention_mode: str | None = None


NO_REPO = RepoChoice()
with_repo = option_group(
    "where",
    RepoChoice,
    {
        "repo": Annotated[
            str | None,
            typer.Option(
                "--repo",
                "-r",
                envvar="STRONGROOM_BACKUP_REPO",
                show_default=False,
                help="Repository: a directory or s3://BUCKET/PREFIX ($STRONGROOM_BACKUP_REPO).",
            ),
        ],
        "s3_endpoint": Annotated[
            str | None,
            typer.Option(
                "--s3-endpoint",
                help="S3-compatible endpoint URL (default: $AWS_ENDPOINT_URL_S3, then AWS S3).",
                show_default=False,
            ),
        ],
        "s3_profile": Annotated[
            str | None,
            typer.Option("--s3-profile", help="Named AWS profile for S3.", show_default=False),
        ],
        "retention_mode": Annotated[
            str | None,
            typer.Option(
                "--retention-mode",
                show_default=False,
                help="S3 Object Lock mode: GOVERNANCE (default) or COMPLIANCE.",
            ),
        ],
    },
)
"""``--repo``, ``--s3-endpoint``, ``--s3-profile``, ``--retention-mode``."""


def store_of(where: RepoChoice) -> RepoStore:
    """The store ``--repo`` names."""
    from strongroom.backup.s3 import S3Store
    from strongroom.backup.store import LocalStore

    if not where.repo:
        fail("give --repo DIR or --repo s3://BUCKET/PREFIX (or set STRONGROOM_BACKUP_REPO)")
    if where.repo.startswith("s3://"):
        return S3Store.connect(
            where.repo,
            endpoint_url=where.s3_endpoint,
            profile=where.s3_profile,
            mode=(where.retention_mode or "GOVERNANCE").upper(),
        )
    if where.s3_endpoint or where.s3_profile:
        fail("--s3-endpoint and --s3-profile go with --repo s3://...")
    return LocalStore(where.repo)


def connect_kms(endpoint: EndpointChoice) -> DirectKmsDataKeys | KmsHttpDataKeys:
    """The KMS client: without botocore when the environment names everything.

    botocore takes longer to import than an incremental backup of a few hundred unchanged
    files takes to run, so :func:`~strongroom.data.kms_direct.direct_from_environment`
    (endpoint, region and static keys in the environment) is tried first; profiles, SSO,
    instance roles and the rest of the AWS chain go to boto3's client.
    """
    from strongroom.data.kms_direct import direct_from_environment

    endpoint.require_url_for_the_rest()
    direct = direct_from_environment(**endpoint.connect_kwargs())
    if direct is not None:
        return direct
    from strongroom.data.kms_http import KmsHttpDataKeys

    return KmsHttpDataKeys.connect(**endpoint.connect_kwargs(), sts=False)


@contextlib.contextmanager
def open_repo(where: RepoChoice, endpoint: EndpointChoice) -> Iterator[Repository]:
    """The repository, opened through the KMS; errors become one line and exit 1."""
    from strongroom.backup.repository import Repository

    with cli_errors():
        kms = connect_kms(endpoint)
        # Everything imported so far lives until exit: keep it out of the collector's
        # full passes, which otherwise rescan it again and again while chunks stream by.
        gc.freeze()
        try:
            yield Repository.open(store_of(where), kms)
        finally:
            kms.close()


@contextlib.contextmanager
def progress_bar(
    label: str, total: int | None, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """An ``advance(n)`` callback driving a transient bar on stderr (if a terminal)."""
    if not enabled or not sys.stderr.isatty():  # before importing rich: start-up time
        yield lambda n: None
        return
    console = stderr_console()
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def say(text: str) -> None:
    """One line on stdout: through rich on a terminal, plain into a pipe or file.

    Importing rich costs more start-up time than an incremental backup spends working,
    and a pipe gets no styling anyway.
    """
    if sys.stdout.isatty():
        stdout_console().print(text, markup=False)
    else:
        sys.stdout.write(text + "\n")


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as JSON output."""
    from strongroom.backup.create import snapshot_json as as_json

    return as_json(snapshot)


# -- init ----------------------------------------------------------------------------------


@with_repo
@with_kms_endpoint
def init_command(
    key: Annotated[
        str, typer.Option("--key", "-k", help="KMS key id, ARN or alias.", show_default=False)
    ],
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Create a repository whose secrets are data keys of a KMS key."""
    from strongroom.backup.repository import Repository

    with cli_errors():
        kms = connect_kms(endpoint)
        store = store_of(where)
        repo = Repository.init(store, kms, key)
    result = {
        "repository": repo.repo_id.hex(),
        "location": store.describe(),
        "kms_key": repo.key_id,
    }
    if json_out:
        print_json(result)
    else:
        stdout_console().print(f"created repository {result['repository']} at {store.describe()}")


# -- ls ------------------------------------------------------------------------------------


@with_repo
@with_kms_endpoint
def ls_command(
    snapshot: Annotated[
        str | None,
        typer.Argument(
            help="List this snapshot's files (id, prefix or latest) instead of the snapshots."
        ),
    ] = None,
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """List the snapshots, or the files of one snapshot."""
    with open_repo(where, endpoint) as repo:
        if snapshot is None:
            found = repo.snapshots()
            if json_out:
                print_json([snapshot_json(s) for s in found])
                return
            console = stdout_console()
            for s in found:
                label = s.name or " ".join(s.paths)
                console.print(f"{s.id[:12]}  {s.time[:19]}  {s.hostname}  {label}", markup=False)
            return
        chosen = repo.find_snapshot(snapshot)
        index = repo.load_index()
        rows = [
            {
                "path": path,
                "type": node.type,
                "size": node.size,
                "mode": oct(node.mode),
                "mtime_ns": node.mtime_ns,
            }
            for path, node in repo.walk(index, chosen.tree)
        ]
    if json_out:
        print_json(rows)
    else:
        console = stdout_console()
        for row in rows:
            console.print(f"{row['type']:8} {row['size']:>12}  {row['path']}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``backup`` group."""
    from strongroom.cli import (
        backup_mount,
        backup_repo_admin,
        backup_repo_create,
        backup_repo_read,
    )

    group = typer.Typer(
        help="Encrypted, deduplicated backups keyed by a KMS key (a directory or S3).",
        no_args_is_help=True,
        epilog="Examples:  strongroom backup init --repo /srv/bk --key alias/backups   |   "
        "strongroom backup create --repo /srv/bk /etc /home   |   "
        "pg_dump db | strongroom backup create --repo s3://b/db --stdin-name db.sql -",
    )
    group.command(
        "init",
        epilog="Example:  strongroom backup init --repo s3://bk/acme "
        "--key alias/acme-backups --endpoint https://kms:8443",
    )(init_command)
    group.command(
        "create", epilog="Example:  strongroom backup create --repo /srv/bk --exclude '*.tmp' /home"
    )(backup_repo_create.create_command)
    group.command(
        "ls",
        epilog="Examples:  strongroom backup ls --repo /srv/bk   |   "
        "strongroom backup ls --repo /srv/bk latest --json",
    )(ls_command)
    backup_repo_read.register(group)
    backup_repo_admin.register(group)
    backup_mount.register(group)
    app.add_typer(group, name="backup")
