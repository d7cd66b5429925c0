"""A Vault-compatible server in this process, with a tenant, a KV mount and a token."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from strongroom.kmip.runtime import AuditFlusher, ensure_kms_key
from strongroom.kms.caller import Caller
from strongroom.kms.service import KeyService
from strongroom.ports import SystemClock
from strongroom.ports.sealed_store import seal_store
from strongroom.rootkey.local import LocalRootOfTrust
from strongroom.store.sqlite import SqliteStore
from strongroom.vault import records
from strongroom.vault.runtime import build_front_end, https_server
from strongroom.vault.service import VaultFrontEnd


@dataclass(frozen=True, slots=True)
class VaultServerInfo:
    """A running test server and what a client needs."""

    url: str
    ca: Path
    token: str
    accessor: str
    tenant: str
    mount: str
    kms_key: str
    caller: Caller
    service: KeyService
    front: VaultFrontEnd


@contextlib.contextmanager
def vault_server(
    directory: Path, mount: str = "mariadb", tenant: str = "acme"
) -> Iterator[VaultServerInfo]:
    """Serve the Vault API on a loopback port with KV mount ``mount`` of tenant ``tenant``."""
    clock = SystemClock()
    root = LocalRootOfTrust.create(directory / "master.key")
    service = KeyService(SqliteStore(directory / "store.db"), root, clock)
    # the front end's own connection, over the same authenticated records
    store = seal_store(SqliteStore(directory / "store.db"), root)
    flusher = AuditFlusher(service, seconds=0.2)
    try:
        account = service.create_tenant(tenant).account_id
        caller = Caller(account, f"arn:aws:iam::{account}:user/vault/admin")
        kms_key = ensure_kms_key(service, caller, None, "vault")
        front = build_front_end(service, store, root, clock)
        store.write(lambda tx: records.add_mount(tx, account, records.Mount(mount, "kv", kms_key)))
        token, info = store.write(lambda tx: records.new_token(tx, root, account, mount, "db"))
        server, credentials = https_server(front, "127.0.0.1", 0)
        ca = directory / "ca.pem"
        ca.write_bytes(credentials.ca_pem)
        flusher.start()
        server.start()
        try:
            yield VaultServerInfo(
                f"https://127.0.0.1:{server.port}",
                ca,
                token,
                info.accessor,
                account,
                mount,
                kms_key,
                caller,
                service,
                front,
            )
        finally:
            server.shutdown()
            server.server_close()
    finally:
        flusher.stop()
        service.close()
        store.close()
