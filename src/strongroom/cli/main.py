"""The ``strongroom`` console script: a typer app whose commands load on first use.

Each command module exposes ``register(app: typer.Typer) -> None``. A new module goes into
:data:`COMMAND_MODULES`, and each command it registers into :data:`COMMANDS` with the
one-line summary ``strongroom --help`` shows, so listing the commands imports none of
them: ``strongroom --help`` and ``strongroom encrypt`` import only what they use (the
key service, the server, the mesh and botocore stay unloaded), which is what keeps the
command line quick to start (``bench/cli_start.py``). A module missing from
:data:`COMMANDS` still works: it is imported whenever the commands are listed
(``tests/cli/test_main.py`` says which entry it lacks).
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup, TyperOption

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
    "k8s-plugin": (
        "strongroom.cli.k8s",
        "Serve the Kubernetes KMS v2 plugin API for kube-apiserver on a unix socket.",
    ),
}
"""Command name -> (module that registers it, summary), in the order ``--help`` lists them."""


def load_module_commands(module_name: str) -> dict[str, _click.Command]:
    """Import one command module and build the click commands it registers."""
    sub = typer.Typer()
    importlib.import_module(module_name).register(sub)
    return dict(typer.main.get_group(sub).commands)


def show_flags_as_flags() -> None:
    """Drop the ``<bool>`` typer 0.29 prints after every on/off flag in rich ``--help``.

    typer's plain help already leaves a flag's type out (``TyperOption.get_help_record``
    checks ``is_flag``); its rich help asks ``display_type_rich``, which does not. So that
    one method learns the same rule, for every command and ``--help`` itself. Idempotent;
    nothing to do on typer versions without the method (before 0.29).
    """
    typed = getattr(TyperOption, "display_type_rich", None)
    if typed is None or getattr(typed, "shows_flags_as_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: _click.Context) -> str | None:
        if self.is_flag and not self.count:
            return None  # a flag takes no value: no type to show
        return typed(self, ctx)  # type: ignore[no-any-return]

    display_type_rich.shows_flags_as_flags = True  # type: ignore[attr-defined]
    setattr(TyperOption, "display_type_rich", display_type_rich)  # noqa: B010 - absent < 0.29


class LazyGroup(TyperGroup):
    """The top-level group: lists commands from :data:`COMMANDS`, imports one when run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, _click.Command] = {}
        self._listing = False

    def _unlisted_modules(self) -> list[str]:
        listed = {module for module, _ in COMMANDS.values()}
        return [module for module in COMMAND_MODULES if module not in listed]

    def _load(self, module_name: str) -> None:
        self._loaded.update(load_module_commands(module_name))

    def list_commands(self, ctx: _click.Context) -> list[str]:
        """Every command: those of :data:`COMMANDS`, then any of a module not listed there."""
        names = list(COMMANDS)
        for module in self._unlisted_modules():
            before = set(self._loaded)
            self._load(module)
            names += [name for name in self._loaded if name not in before]
        return names

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        """The command ``cmd_name``: a summary while help lists them, else the real one."""
        if cmd_name in self._loaded:
            return self._loaded[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, summary = entry
        if self._listing:
            return TyperCommand(cmd_name, help=summary, short_help=summary)
        self._load(module)
        return self._loaded.get(cmd_name)

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """The help page, listing the commands by their summaries (importing none)."""
        self._listing = True
        try:
            # click's plain layout, not typer's rich one: importing rich's help machinery
            # would double the time `strongroom --help` takes; the commands' own help
            # pages keep it
            super(TyperGroup, self).format_help(ctx, formatter)
        finally:
            self._listing = False

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        """``strongroom`` alone prints the help page (plain: see :meth:`format_help`)."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            _click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(2)
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        """As click does, with "did you mean" drawn from the lazy command list."""
        try:
            return self._click_resolve_command(ctx, args)
        except _click.exceptions.UsageError as exc:
            if args:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    names = ", ".join(repr(m) for m in matches)
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {names}?"
            raise


def build_app() -> typer.Typer:
    """Return the top-level ``strongroom`` app (its commands load when first used)."""
    show_flags_as_flags()
    app = typer.Typer(
        name="strongroom",
        cls=LazyGroup,
        help="Strongroom: a self-hosted, AWS KMS-compatible key service.",
        epilog='Examples:  strongroom server   |   eval "$(strongroom env)"   |   '
        "strongroom admin tenant create acme --json   |   strongroom <command> --help",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root() -> None:
        """Strongroom: a self-hosted, AWS KMS-compatible key service."""

    return app


def main() -> None:
    """Run the command line."""
    build_app()(prog_name="strongroom")


if __name__ == "__main__":
    main()
