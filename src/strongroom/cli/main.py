"""The ``strongroom`` console script: a typer app whose commands load on first use.

Each command module exposes ``register(app: typer.Typer) -> None``. A new module goes into
:data:`COMMAND_MODULES`, and each command it registers into :data:`COMMANDS` with the
one-line summary ``strongroom --help`` shows, so listing the commands imports none of
them: ``strongroom --help`` and ``strongroom encrypt`` import only what they use (the
key service, the server, the mesh and botocore stay unloaded), which is what keeps the
command line quick to start (``bench/cli_start.py``). A module missing from
:data:`COMMANDS` still works: it is imported whenever the commands are listed
(``tests/cli/test_main.py`` says which entry it lacks). A command on a tighter latency
budget can also have a fast start in :data:`FAST_COMMANDS`: a function ``f(args)`` that
is tried before typer is imported, returning ``None`` to let the typer command run instead.
``strongroom``, ``strongroom --help`` and ``-h`` print the command list without click
(:mod:`strongroom.cli.top_help`, the same page click prints).
"""

from __future__ import annotations

import importlib
import os
import sys

TYPE_CHECKING = False  # not typing's: `strongroom volume pass` starts without importing it
if TYPE_CHECKING:
    import typer
    from typer import _click

COMMAND_MODULES: tuple[str, ...] = (
    "strongroom.cli.init",
    "strongroom.cli.admin",
    "strongroom.cli.server",
    "strongroom.cli.env",
    "strongroom.cli.k8s",
    "strongroom.cli.data",
    "strongroom.cli.data_objects",
    "strongroom.cli.user_keys",
    "strongroom.cli.mesh",
    "strongroom.cli.kmip",
    "strongroom.cli.vault",
    "strongroom.cli.backup_repo",
    "strongroom.cli.volume",
)
"""Modules whose ``register(app)`` adds commands."""

COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "strongroom.cli.init",
        "Initialise a new data directory: root key, config.json and an empty key store.",
    ),
    "server": (
        "strongroom.cli.server",
        "Serve the AWS KMS API (HTTPS, SigV4) from a data directory, initialising it first.",
    ),
    "env": (
        "strongroom.cli.env",
        "Print shell lines exporting a data directory's admin credentials for AWS clients.",
    ),
    "encrypt": (
        "strongroom.cli.data",
        "Encrypt a file into a chunked stream under a fresh data key of a KMS key.",
    ),
    "decrypt": (
        "strongroom.cli.data",
        "Verify and decrypt a chunked stream (also a stored object's file).",
    ),
    "objects": (
        "strongroom.cli.data_objects",
        "Encrypted objects of one tenant in a local directory or an S3 bucket.",
    ),
    "user-keys": (
        "strongroom.cli.user_keys",
        "Per-user keys of a Strongroom server (crypto-shredding): forget a user by destroying "
        "their key.",
    ),
    "admin": (
        "strongroom.cli.admin",
        "Administer a data directory: tenants, access keys, audit, keystore backups.",
    ),
    "mesh": (
        "strongroom.cli.mesh",
        "Workload identities (SPIFFE): registration, trust bundles, the Workload API, mTLS "
        "sidecars and TLS-only egress.",
    ),
    "backup": (
        "strongroom.cli.backup_repo",
        "Encrypted, deduplicated backups keyed by a KMS key (a directory or S3).",
    ),
    "volume": (
        "strongroom.cli.volume",
        "LUKS2 volumes whose passphrase a KMS key wraps: format, unlock, rewrap, shred.",
    ),
    "k8s-plugin": (
        "strongroom.cli.k8s",
        "Serve the Kubernetes KMS v2 plugin API for kube-apiserver on a unix socket.",
    ),
    "kmip": (
        "strongroom.cli.kmip",
        "KMIP server (TLS, client certificates) for databases: MongoDB, MySQL, Percona...",
    ),
    "vault": (
        "strongroom.cli.vault",
        "Vault-compatible key API (KV v2, transit) for databases: MariaDB...",
    ),
}
"""Command name -> (module that registers it, summary), in the order ``--help`` lists them."""

FAST_COMMANDS: dict[tuple[str, ...], str] = {
    ("encrypt",): "strongroom.cli.data_fast:run_encrypt",
    ("decrypt",): "strongroom.cli.data_fast:run_decrypt",
    ("backup", "create"): "strongroom.cli.backup_fast:run_create",
    ("volume", "pass"): "strongroom.cli.volume_fast:run_pass",
    ("volume", "unlock"): "strongroom.cli.volume_fast:run_unlock",
    ("volume", "rewrap"): "strongroom.cli.volume_fast:run_rewrap",
}
"""``(command,)`` or ``(group, command)`` -> ``module:function``: ``function(args) ->
int | None``, given the arguments after the command's words, tried before typer
(``None``: let the typer command run)."""
HELP = "Strongroom: a self-hosted, AWS KMS-compatible key service."
EPILOG = (
    'Examples:  strongroom server   |   eval "$(strongroom env)"   |   '
    "strongroom admin tenant create acme --json   |   strongroom <command> --help"
)
HELP_ARGS: tuple[list[str], ...] = ([], ["--help"], ["-h"])
"""Arguments that print the command list (with no arguments, exit status 2 as click's)."""
COMPLETION_VARIABLE = "_STRONGROOM_COMPLETE"
"""Set by a shell asking for completions: click's business, so no fast start then."""


def load_module_commands(module_name: str) -> dict[str, _click.Command]:
    """Import one command module and build the click commands it registers."""
    import typer
    import typer.main

    sub = typer.Typer()
    importlib.import_module(module_name).register(sub)
    return dict(typer.main.get_group(sub).commands)


def build_app() -> typer.Typer:
    """Return the top-level ``strongroom`` app (its commands load when first used)."""
    import typer

    from strongroom.cli.lazy_group import LazyGroup, show_flags_as_flags

    show_flags_as_flags()
    app = typer.Typer(
        name="strongroom",
        cls=LazyGroup,
        help=HELP,
        epilog=EPILOG,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root() -> None:
        """Strongroom: a self-hosted, AWS KMS-compatible key service."""

    return app


def print_help() -> int:
    """Print the command list as click would (:mod:`strongroom.cli.top_help`); 0.

    1 when the reader went away (``strongroom --help | head -1``), as typer exits then.
    """
    from strongroom.cli.top_help import help_page, help_width
    from strongroom.volume.output import write_out

    rows = [(name, summary) for name, (_, summary) in COMMANDS.items()]
    page = help_page("strongroom", HELP, EPILOG, rows, help_width())
    return write_out(page.encode(sys.stdout.encoding or "utf-8"))


def fast_start(args: list[str]) -> int | None:
    """Run ``args`` without typer when a fast start covers them; ``None`` otherwise."""
    if COMPLETION_VARIABLE in os.environ:
        return None
    if args in HELP_ARGS:
        if set(COMMAND_MODULES) - {module for module, _ in COMMANDS.values()}:
            return None  # a module missing from COMMANDS: only click lists its commands
        return print_help() or (0 if args else 2)
    for size in (2, 1):
        fast = FAST_COMMANDS.get(tuple(args[:size])) if len(args) >= size else None
        if fast is not None:
            module, _, function = fast.partition(":")
            status: int | None = getattr(importlib.import_module(module), function)(args[size:])
            return status
    return None


def main() -> None:
    """Run the command line."""
    status = fast_start(sys.argv[1:])
    if status is not None:
        sys.exit(status)
    build_app()(prog_name="strongroom")


if __name__ == "__main__":
    main()
