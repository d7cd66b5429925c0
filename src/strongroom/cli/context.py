"""What every command shares: the data directory, opening the service, output and errors.

Commands get their data directory from :data:`DataDirOption` and open what they need
with :func:`open_store_for`, :func:`open_root_for` or :func:`service_session` (which
flushes the audit buffer and closes everything when the command ends). Output goes
through :func:`print_json` (``--json``) or a rich :class:`~rich.console.Console`;
:func:`cli_errors` turns a :class:`~strongroom.errors.StrongroomError` into one line on
stderr and exit code 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from strongroom.cli.common import (  # re-exported: commands import them from here too
    PIPED_WIDTH,
    DataDirOption,
    JsonOption,
    MetricsPortOption,
    cli_errors,
    data_dir_of,
    fail,
    print_json,
    stderr_console,
    stdout_console,
)
from strongroom.config import DataDirConfig, load_config
from strongroom.errors import StrongroomError

if TYPE_CHECKING:  # the kernel, stores and roots load when a command opens them
    from strongroom.kms import KeyService
    from strongroom.ports import Clock, RootOfTrust, Store

__all__ = [
    "PIPED_WIDTH",
    "STORE_ENV",
    "DataDirOption",
    "JsonOption",
    "MetricsPortOption",
    "cli_errors",
    "data_dir_of",
    "fail",
    "open_root_for",
    "open_service",
    "open_store_for",
    "print_json",
    "service_session",
    "shown_root",
    "shown_store_url",
    "stderr_console",
    "stdout_console",
    "store_option",
]


def open_store_for(data_dir: Path, store_url: str | None = None) -> Store:
    """Open the key store configured in ``data_dir`` (or ``store_url`` instead).

    Its records are authenticated (``strongroom.ports.sealed_store``): the root of trust
    is opened for a moment to unwrap the store's MAC key.
    """
    from strongroom.store import open_store
    from strongroom.store_trust import seal_for_data_dir

    url = store_url or load_config(data_dir).store_url
    store = open_store(url)
    try:
        root = open_root_for(data_dir)
        try:
            return seal_for_data_dir(store, root, data_dir, url)
        finally:
            root.close()
    except BaseException:
        store.close()
        raise


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
