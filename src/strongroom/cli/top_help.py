"""``strongroom --help`` without click: the same page, laid out as click lays it out.

The page lists the commands from :data:`strongroom.cli.main.COMMANDS`; click would need
typer imported first, which is most of the time the page takes. So
:func:`strongroom.cli.main.main` prints :func:`help_page` for ``strongroom``,
``strongroom --help`` and ``strongroom -h``, and this module does the part of click's
``HelpFormatter`` that page uses, step by step the way click does it: the usage line,
the help text, the ``Options`` and ``Commands`` definition lists and the epilog, each
wrapped by :mod:`textwrap` with click's settings, at click's width (the terminal's
columns, at most 80, minus 2, at least 50). ``tests/cli/test_main.py`` compares the page
with click's at many widths.
"""

from __future__ import annotations

import os
import sys
import textwrap

MAX_WIDTH = 80
"""click's default ``max_content_width``."""
HELP_OPTION = ("-h, --help", "Show this message and exit.")
USAGE = "[OPTIONS] COMMAND [ARGS]..."


class _Wrapper(textwrap.TextWrapper):
    """click's ``TextWrapper``: a word longer than a line is cut where the line ends."""

    def _handle_long_word(
        self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
    ) -> None:
        space_left = max(width - cur_len, 1)
        last = reversed_chunks[-1]
        cur_line.append(last[:space_left])
        reversed_chunks[-1] = last[space_left:]


def _fill(text: str, width: int, indent: str = "", subsequent: str | None = None) -> str:
    """One paragraph wrapped as click's ``wrap_text`` wraps it."""
    wrapper = _Wrapper(
        width,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        replace_whitespace=False,
    )
    return wrapper.fill(text.expandtabs())


def _paragraphs(text: str, width: int, indent: str = "") -> str:
    """As click's ``wrap_text(..., preserve_paragraphs=True)`` for plain paragraphs."""
    paragraphs: list[str] = []
    lines: list[str] = []
    extra = 0
    for line in [*text.expandtabs().splitlines(), ""]:
        if line:
            if not lines:
                extra = len(line) - len(line.lstrip())
                line = line.lstrip()
            lines.append(line)
        elif lines:
            paragraphs.append(_fill(" ".join(lines), width, indent + " " * extra))
            lines = []
    return "\n\n".join(paragraphs)


def terminal_columns() -> int:
    """The terminal's width as :func:`shutil.get_terminal_size` reads it (fallback 80)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def help_width(columns: int | None = None) -> int:
    """The width click lays help out at for a terminal of ``columns``."""
    return max(min(terminal_columns() if columns is None else columns, MAX_WIDTH) - 2, 50)


def _definitions(rows: list[tuple[str, str]], width: int, indent: int = 2) -> list[str]:
    """As click's ``write_dl``: names, then their text wrapped in a column beside them."""
    first_col = min(max(len(name) for name, _ in rows), 30) + 2
    out = []
    for name, text in rows:
        head = " " * indent + name
        if len(name) <= first_col - 2:
            head += " " * (first_col - len(name))
        else:
            head += "\n" + " " * (first_col + indent)
        lines = _paragraphs(text, max(width - first_col - 2, 10)).splitlines()
        out.append(head + lines[0] + "\n")
        out += [" " * (first_col + indent) + line + "\n" for line in lines[1:]]
    return out


def help_page(
    prog: str, help_text: str, epilog: str, commands: list[tuple[str, str]], width: int
) -> str:
    """The top-level help page of ``prog``, as click prints it (with its final newline)."""
    prefix = f"Usage: {prog} "
    parts = [_fill(USAGE, width, prefix, " " * len(prefix)), "\n"]
    parts += ["\n", _paragraphs(help_text, width, "  "), "\n"]
    parts += ["\n", "Options:\n", *_definitions([HELP_OPTION], width)]
    parts += ["\n", "Commands:\n", *_definitions(commands, width)]
    parts += ["\n", _paragraphs(epilog, width, "  "), "\n"]
    return "".join(parts).rstrip("\n") + "\n"
