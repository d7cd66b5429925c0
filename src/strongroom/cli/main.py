"""The ``strongroom`` console script: builds the typer app from its command modules.

Each command module exposes ``register(app: typer.Typer) -> None``; add a new one (for
example ``strongroom.cli.server``) to :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES: tuple[str, ...] = (
    "strongroom.cli.init",
    "strongroom.cli.admin",
    "strongroom.cli.server",
    "strongroom.cli.env",
    "strongroom.cli.k8s",
    "strongroom.cli.data",
    "strongroom.cli.user_keys",
    "strongroom.cli.mesh",
)
"""Modules whose ``register(app)`` adds commands, in the order ``--help`` lists them."""


def build_app() -> typer.Typer:
    """Return the top-level ``strongroom`` app with every command registered."""
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
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    """Run the command line."""
    build_app()(prog_name="strongroom")


if __name__ == "__main__":
    main()
