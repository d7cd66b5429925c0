"""What every command shares: the data directory, opening the service, output and errors.

Commands get their data directory from :data:`DataDirOption` and open what they need
with :func:`open_store_for`, :func:`open_root_for` or :func:`service_session` (which
flushes the audit buffer and closes everything when the command ends). Output goes
through :func:`print_json` (``--json``) or a rich :class:`~rich.console.Console`;
:func:`cli_errors` turns a :class:`~strongroom.errors.StrongroomError` into one line on
stderr and exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console

from strongroom.config import DATA_DIR_ENV, DataDirConfig, load_config, resolve_data_dir
from strongroom.errors import StrongroomError

if TYPE_CHECKING:  # the kernel, stores and roots load when a command opens them
    from strongroom.kms import KeyService
    from strongroom.ports import Clock, RootOfTrust, Store

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


def open_store_for(data_dir: Path, store_url: str | None = None) -> Store:
    """Open the key store configured in ``data_dir`` (or ``store_url`` instead)."""
    from strongroom.store import open_store

    url = store_url or load_config(data_dir).store_url
    return open_store(url)


def open_root_for(data_dir: Path, root_spec: str | None = None) -> RootOfTrust:
    """Open the root of trust configured in ``data_dir`` (or ``root_spec`` instead)."""
    from strongroom.rootkey import open_root_of_trust

    spec = root_spec or load_config(data_dir).root_of_trust
    return open_root_of_trust(spec, data_dir, create=False)


def open_service(
    data_dir: Path,
    store_url: str | None = None,
    root_spec: str | None = None,
    clock: Clock | None = None,
) -> KeyService:
    """Build the key service of a data directory: its store, its root of trust, the clock.

    ``store_url`` and ``root_spec`` override what ``config.json`` says. The caller closes
    the service (:meth:`KeyService.close` flushes the audit buffer).
    """
    from strongroom import deployment

    config: DataDirConfig | None = None
    if store_url is None or root_spec is None:
        config = load_config(data_dir)
    chosen = DataDirConfig(
        store_url=store_url or (config.store_url if config else ""),
        root_of_trust=root_spec or (config.root_of_trust if config else ""),
    )
    return deployment.open_service(chosen, data_dir, clock=clock)


@contextmanager
def service_session(data_dir: Path) -> Iterator[KeyService]:
    """Open the service of ``data_dir`` for one command; flush the audit and close after."""
    service = open_service(data_dir)
    try:
        yield service
    finally:
        service.close()


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with code 1."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    raise typer.Exit(1)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn Strongroom errors and file system errors into one stderr line and exit 1."""
    try:
        yield
    except StrongroomError as exc:
        fail(str(exc) or type(exc).__name__)
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
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)


def stderr_console() -> Console:
    """A console on stderr for progress bars and notices."""
    return Console(stderr=True, highlight=False)


STORE_ENV = "STRONGROOM_STORE"
"""Environment variable with the key store URL (``--store``'s default): may hold a password."""


def store_option(url: str | None) -> str | None:
    """``--store`` as given, refused if it carries a password on the command line.

    Every user of the machine can read a process's arguments (``ps``); a password belongs
    in the environment (``STRONGROOM_STORE``, ``PGPASSWORD``) or libpq's password file.
    """
    if url is None or url == os.environ.get(STORE_ENV):
        return url
    if "://" in url and urlsplit(url).password is not None:
        fail(
            f"--store {shown_store_url(url)}: a password on the command line is visible to "
            f"every user of this machine (ps). Give the URL in {STORE_ENV} instead, or the "
            "password in PGPASSWORD or a libpq password file (~/.pgpass, PGPASSFILE)."
        )
    return url


def shown_store_url(url: str) -> str:
    """``url`` without its password, for printing."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def shown_root(spec: str) -> str:
    """``spec`` without a PIN, for printing."""
    from strongroom.rootkey import parse_pkcs11_uri

    if spec == "local":
        return spec
    try:
        return parse_pkcs11_uri(spec).to_text()
    except StrongroomError:
        return "pkcs11:<unparsable URI>"
