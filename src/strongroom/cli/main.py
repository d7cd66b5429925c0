"""The ``strongroom`` console script: builds the typer app from its command modules.

Each command module exposes ``register(app: typer.Typer) -> None``; add a new one (for
example ``strongroom.cli.server``) to :data:`COMMAND_MODULES`. A command on a latency
budget can also have a fast start in :data:`FAST_COMMANDS`: a function ``f(args)`` that
is tried before typer and the command modules are imported (typer is imported lazily for
that reason), returning ``None`` to let the typer command run instead; and a command in
:data:`SOLE_MODULES` is registered alone when it is the one invoked.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # not typing's: `strongroom volume pass` starts without importing it
if TYPE_CHECKING:
    import typer

COMMAND_MODULES: tuple[str, ...] = (
    "strongroom.cli.init",
    "strongroom.cli.admin",
    "strongroom.cli.server",
    "strongroom.cli.k8s",
    "strongroom.cli.data",
    "strongroom.cli.user_keys",
    "strongroom.cli.mesh",
    "strongroom.cli.kmip",
    "strongroom.cli.vault",
    "strongroom.cli.backup_repo",
    "strongroom.cli.volume",
)
"""Modules whose ``register(app)`` adds commands, in the order ``--help`` lists them."""

FAST_COMMANDS: dict[tuple[str, str], str] = {
    ("volume", "pass"): "strongroom.cli.volume_fast:run_pass",
    ("volume", "unlock"): "strongroom.cli.volume_fast:run_unlock",
}
"""``(group, command)`` -> ``module:function``, ``function(args) -> int | None`` tried
before typer (``None``: let the typer command run)."""


SOLE_MODULES: dict[str, str] = {
    "backup": "strongroom.cli.backup_repo",
    "volume": "strongroom.cli.volume",
}
"""Top-level commands whose module is registered alone when they are invoked, so that
``strongroom volume ...`` starts without importing every other command module."""


def build_app(modules: tuple[str, ...] = COMMAND_MODULES) -> typer.Typer:
    """Return the top-level ``strongroom`` app with the commands of ``modules`` registered."""
    import typer

    app = typer.Typer(
        name="strongroom",
        help="Strongroom: a self-hosted, AWS KMS-compatible key service.",
        epilog="Examples:  strongroom server   |   strongroom admin tenant create acme --json"
        "   |   strongroom <command> --help",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for name in modules:
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    """Run the command line."""
    fast = FAST_COMMANDS.get((sys.argv[1], sys.argv[2])) if len(sys.argv) > 2 else None
    if fast is not None:
        module, _, function = fast.partition(":")
        status = getattr(importlib.import_module(module), function)(sys.argv[3:])
        if status is not None:
            sys.exit(status)
    sole = SOLE_MODULES.get(sys.argv[1]) if len(sys.argv) > 1 else None
    build_app((sole,) if sole else COMMAND_MODULES)(prog_name="strongroom")


if __name__ == "__main__":
    main()
