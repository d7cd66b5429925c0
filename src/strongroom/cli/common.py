"""What every command shares and what costs nothing to import: options, output, errors.

:data:`DataDirOption` and :func:`data_dir_of` name the data directory; :func:`print_json`
(``--json``) and the rich consoles print; :func:`cli_errors` turns a
:class:`~strongroom.errors.StrongroomError` or a file system error into one line on stderr
and exit code 1. Opening the key service is :mod:`strongroom.cli.context`'s: commands that
never open it (``encrypt``, ``env``...) import only this module, so they start quickly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from strongroom.cli.failure import error_line, error_text
from strongroom.cli.output import PIPED_WIDTH as PIPED_WIDTH  # re-exported: commands' home
from strongroom.cli.output import print_json as print_json
from strongroom.cli.output import stderr_console as stderr_console
from strongroom.cli.output import stdout_console as stdout_console
from strongroom.config import DATA_DIR_ENV, resolve_data_dir
from strongroom.errors import StrongroomError

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
    sys.stderr.write(error_line(message))
    raise typer.Exit(1)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn Strongroom errors and file system errors into one stderr line and exit 1.

    The words are :func:`strongroom.cli.failure.error_text`'s, as on the fast starts.
    """
    try:
        yield
    except (StrongroomError, OSError) as exc:
        fail(error_text(exc))
