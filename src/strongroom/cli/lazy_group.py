"""The top-level click group of ``strongroom``: commands listed from a table, loaded on use.

Split from :mod:`strongroom.cli.main` so that a command's fast start
(:data:`~strongroom.cli.main.FAST_COMMANDS`) runs before typer is imported at all.
"""

from __future__ import annotations

from typing import Any

from typer import _click
from typer.core import TyperCommand, TyperGroup, TyperOption

from strongroom.cli.main import COMMAND_MODULES, COMMANDS, load_module_commands


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
