"""The ``strongroom`` console script: builds the typer app from its command modules.

Each command module exposes ``register(app: typer.Typer) -> None``; add a new one (for
example ``strongroom.cli.server``) to :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import sys

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
)
"""Modules whose ``register(app)`` adds commands, in the order ``--help`` lists them."""
ALONE: dict[str, str] = {"backup": "strongroom.cli.backup_repo"}
"""Command groups that run with only their own module loaded (start-up time matters there)."""


def build_app(only: str | None = None) -> typer.Typer:
    """Return the top-level ``strongroom`` app with every command (or module ``only``)."""
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
    for name in COMMAND_MODULES if only is None else (only,):
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    """Run the command line."""
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    build_app(ALONE.get(first))(prog_name="strongroom")


if __name__ == "__main__":
    main()
