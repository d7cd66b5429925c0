"""What every command shares and what costs nothing to import: options, output, errors.

:data:`DataDirOption` and :func:`data_dir_of` name the data directory; :func:`print_json`
(``--json``) and the rich consoles print; :func:`cli_errors` turns a
:class:`~strongroom.errors.StrongroomError` or a file system error into one line on stderr
and exit code 1. Opening the key service is :mod:`strongroom.cli.context`'s: commands that
never open it (``encrypt``, ``env``...) import only this module, so they start quickly.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from strongroom.config import DATA_DIR_ENV, resolve_data_dir
from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    from rich.console import Console

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        show_envvar=True,
        show_default=False,
        help="Data directory (default: $STRONGROOM_DATA_DIR, then ./.strongroom).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
MetricsPortOption = Annotated[
    int,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: off).",
    ),
]


def data_dir_of(option: Path | None) -> Path:
    """The data directory a command works on."""
    return resolve_data_dir(option, os.environ)


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with code 1."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    raise typer.Exit(1)


_UNEXPLAINED = {
    "InvalidCiphertextError": "The key service cannot decrypt this (InvalidCiphertextException, "
    "which AWS KMS too sends without detail): it was encrypted under another key, account or "
    "encryption context, altered, or its key (or the end user's key) was destroyed.",
}
"""Messages for errors a key service sent without one (AWS KMS does so on purpose)."""


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn Strongroom errors and file system errors into one stderr line and exit 1."""
    try:
        yield
    except StrongroomError as exc:
        fail(str(exc) or _UNEXPLAINED.get(type(exc).__name__, type(exc).__name__))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}")


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


def stderr_console() -> Console:
    """A console on stderr for progress bars and notices."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)
