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
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console

from strongroom.config import DATA_DIR_ENV, DataDirConfig, load_config, resolve_data_dir
from strongroom.errors import StrongroomError
from strongroom.kms import KeyService, SystemClock
from strongroom.kms.ports import Clock, RootOfTrust, Store
from strongroom.rootkey import open_root_of_trust, parse_pkcs11_uri
from strongroom.store import open_store

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
    url = store_url or load_config(data_dir).store_url
    return open_store(url)


def open_root_for(data_dir: Path, root_spec: str | None = None) -> RootOfTrust:
    """Open the root of trust configured in ``data_dir`` (or ``root_spec`` instead)."""
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
    config: DataDirConfig | None = None
    if store_url is None or root_spec is None:
        config = load_config(data_dir)
    store = open_store(store_url or (config.store_url if config else ""))
    try:
        root = open_root_of_trust(
            root_spec or (config.root_of_trust if config else ""), data_dir, create=False
        )
    except BaseException:
        store.close()
        raise
    return KeyService(store, root, clock or SystemClock())


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
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)


def stderr_console() -> Console:
    """A console on stderr for progress bars and notices."""
    return Console(stderr=True, highlight=False)


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
    if spec == "local":
        return spec
    try:
        return parse_pkcs11_uri(spec).to_text()
    except StrongroomError:
        return "pkcs11:<unparsable URI>"
