"""Command-line arguments read by hand for the fast starts, or handed back to typer.

A fast start (:data:`strongroom.cli.main.FAST_COMMANDS`) runs before typer is imported, so
it reads its arguments itself. It reads only the plain forms: positionals (``-`` is one),
``--name value``, ``--name=value``, ``-n value`` and flags, each option once unless it
is repeatable. Anything else (``--help``, an unknown option, ``-nVALUE``, ``--``, a
repeat, a missing value or positional) gives ``None``: the typer command then runs and
its messages stay the only ones. ``tests/cli/test_fast_start.py`` checks that each fast
start knows exactly the options of its typer command.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the fast starts import this module
if TYPE_CHECKING:
    from collections.abc import Collection, Mapping


def parse_args(
    args: list[str],
    positionals: tuple[str, ...],
    options: Mapping[str, str],
    flags: Mapping[str, str] | None = None,
    repeatable: Collection[str] = (),
) -> dict[str, list[str]] | None:
    """``{name: [values]}`` for the options, flags (no value) and positionals; or ``None``.

    ``options`` and ``flags`` map each spelling (``-k``, ``--key``) to the name it is
    filed under; ``repeatable`` names the options that may be given more than once.
    """
    parsed: dict[str, list[str]] = {}
    given: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-" or not arg.startswith("-"):
            given.append(arg)
        elif flags and arg in flags:
            if flags[arg] in parsed:
                return None
            parsed[flags[arg]] = []
        else:
            spelled, sep, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
            name = options.get(spelled)
            if name is None or (name in parsed and name not in repeatable):
                return None
            if not sep:
                index += 1
                if index == len(args):
                    return None
                value = args[index]
            parsed.setdefault(name, []).append(value)
        index += 1
    if len(given) != len(positionals):
        return None
    for name, value in zip(positionals, given, strict=True):
        parsed[name] = [value]
    return parsed


def spelled(*names: str) -> dict[str, str]:
    """``{"--endpoint": "--endpoint", ...}``: options spelled one way each."""
    return {name: name for name in names}


ENDPOINT_OPTIONS = spelled("--endpoint", "--region", "--profile", "--ca-bundle")
""":func:`strongroom.cli.endpoint.endpoint_options`'s four options."""


def integer(text: str) -> int | None:
    """``text`` as click's ``INT`` reads a plain decimal, else ``None`` (typer decides)."""
    return int(text) if text.isascii() and text.isdigit() else None


def context_entries(entries: list[str] | None) -> dict[str, str]:
    """``--context`` values, ``["k=v", ...]``, as a dict.

    A malformed or repeated entry is a :class:`~strongroom.errors.ValidationError`.
    """
    from strongroom.errors import ValidationError

    context: dict[str, str] = {}
    for entry in entries or ():
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise ValidationError(f"A context entry is KEY=VALUE, not {entry!r}.")
        if key in context:
            raise ValidationError(f"The context key {key!r} is given twice.")
        context[key] = value
    return context
