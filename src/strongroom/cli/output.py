"""Output every command shares, typer-free: ``--json`` and the rich consoles.

:func:`print_json` writes ``--json`` results; :func:`stdout_console` and
:func:`stderr_console` build rich consoles for human output and progress bars (rich is
imported only then). Re-exported by :mod:`strongroom.cli.common`; the fast starts
(:mod:`strongroom.cli.volume_fast`) import this module directly.
"""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False  # not typing's: the fast starts import this module
if TYPE_CHECKING:
    from typing import Any

    from rich.console import Console


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON and a newline on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


PIPED_WIDTH = 1000
"""Line width of stdout when it is not a terminal: tables and ids are never cut short."""


def stdout_console() -> Console:
    """A console on stdout for human-readable output.

    On a terminal rich fits the output to its width; into a pipe or a file it would
    assume 80 columns and cut table cells (access key ids, ARNs) short with an ellipsis
    and break long lines, so the width is then :data:`PIPED_WIDTH`.
    """
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)


def print_line(text: str) -> None:
    """Print one line as ``stdout_console().print(text)`` does, without rich when plain.

    Into a pipe or a file, a short printable ASCII line without markup (no ``[``) comes out
    of rich as itself, emoji codes (``:key:``) replaced, and a newline: that is written
    directly, with rich's own emoji replacement (its small table, not the console, which
    costs a fast start more than its KMS calls). Anything else goes through rich.
    """
    if sys.stdout.isatty() or "[" in text or len(text) >= PIPED_WIDTH:
        stdout_console().print(text)
        return
    if not (text.isascii() and text.isprintable()):
        stdout_console().print(text)
        return
    from rich._emoji_replace import _emoji_replace

    sys.stdout.write(_emoji_replace(text) + "\n")
    sys.stdout.flush()


def stderr_console() -> Console:
    """A console on stderr for progress bars and notices."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_rows(rows: list[dict[str, Any]], json_output: bool, columns: tuple[str, ...]) -> None:
    """A listing: ``rows`` as JSON, or one line each of the ``columns`` joined by two spaces."""
    if json_output:
        print_json(rows)
        return
    console = stdout_console()
    for row in rows:
        console.print("  ".join(str(row[column]) for column in columns))
