"""A KMIP server in this process, with client certificates on disk: for tests and benchmarks.

:func:`kmip_server` builds a key service over SQLite in a directory, creates the tenants
asked for, issues one client certificate per tenant (``<dir>/clients/<tenant>/client.pem``,
``client.key``, ``ca.pem``) and serves KMIP on a loopback port until the block ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.kmip.clients import ClientDirectory, issue_client
from strongroom.kmip.context import KmipClient
from strongroom.kmip.engine import KmipEngine
from strongroom.kmip.runtime import AuditFlusher, build_kernel, ensure_kms_key
from strongroom.kmip.server import KmipServer, Limits, mutual_tls_context
from strongroom.kms.service import KeyService
from strongroom.ports import SystemClock
from strongroom.ports.sealed_store import seal_store
from strongroom.rootkey.local import LocalRootOfTrust
from strongroom.store.sqlite import SqliteStore
from strongroom.tls.server_cert import SubjectNames, load_credentials, server_credentials


@dataclass(frozen=True, slots=True)
class ClientFiles:
    """Where one client's certificate, key and CA bundle are."""

    cert: Path
    key: Path
    ca: Path
    client: KmipClient


@dataclass(slots=True)
class KmipServerInfo:
    """A running test server."""

    port: int
    service: KeyService
    server: KmipServer
    clients: dict[str, ClientFiles] = field(default_factory=dict)


def write_client(
    directory: Path, issued_pem: tuple[bytes, bytes, bytes]
) -> tuple[Path, Path, Path]:
    """Write ``(certificate, key, CA)`` PEMs into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / "client.pem", directory / "client.key", directory / "ca.pem")
    for path, data in zip(paths, issued_pem, strict=True):
        path.write_bytes(data)
    paths[1].chmod(0o600)
    return paths


@contextlib.contextmanager
def kmip_server(
    directory: Path, tenants: tuple[str, ...] = ("alice",), limits: Limits | None = None
) -> Iterator[KmipServerInfo]:
    """Serve KMIP for ``tenants`` (one client certificate each) on a loopback port."""
    clock = SystemClock()
    root = LocalRootOfTrust.create(directory / "master.key")
    service = KeyService(SqliteStore(directory / "store.db"), root, clock)
    # the front end's own connection, over the same authenticated records
    store = seal_store(SqliteStore(directory / "store.db"), root)
    write_lock = threading.Lock()
    flusher = AuditFlusher(service, seconds=0.2, write_lock=write_lock)
    try:
        credentials = store.write(
            lambda tx: server_credentials(tx, root, SubjectNames.build(), clock.now())
        )
        context = mutual_tls_context(lambda c: load_credentials(c, credentials), credentials.ca_pem)
        server = KmipServer(
            KmipEngine(build_kernel(service, store, clock, write_lock)),
            ClientDirectory(store, root, clock).resolve,
            context,
            "127.0.0.1",
            0,
            limits,
        )
        info = KmipServerInfo(server.port, service, server)
        for name in tenants:
            account = service.create_tenant(name).account_id
            probe = KmipClient(account, "app", "")
            key_arn = ensure_kms_key(service, probe.caller, None, "kmip")
            issued = issue_client(store, root, clock, KmipClient(account, "app", key_arn))
            cert, key, ca = write_client(
                directory / "clients" / name,
                (issued.certificate_pem, issued.key_pem, issued.ca_pem),
            )
            info.clients[name] = ClientFiles(cert, key, ca, issued.client)
        flusher.start()
        server.start()
        try:
            yield info
        finally:
            server.stop()
    finally:
        flusher.stop()
        service.close()
        store.close()
