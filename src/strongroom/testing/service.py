"""Build a key service for tests and applications' own test suites."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strongroom.kms.authz import Authorizer
from strongroom.kms.caller import Caller
from strongroom.kms.service import KeyService
from strongroom.ports import Clock, ManualClock, RootOfTrust, Store
from strongroom.rootkey.local import LocalRootOfTrust
from strongroom.store.sqlite import SqliteStore


def tenant_caller(service: KeyService, name: str, region: str = "us-east-1") -> Caller:
    """Create a tenant named ``name`` with one access key and return its caller."""
    tenant = service.create_tenant(name)
    principal, _ = service.create_access_key(tenant.account_id)
    access = service.lookup_access_key(principal.access_key_id, region)
    if access is None:
        raise RuntimeError("a just-created access key was not found")
    return access.caller


def new_service(store: Store, root: RootOfTrust, clock: Clock) -> KeyService:
    """Return a key service over the given edges."""
    return KeyService(store, root, clock)


@contextlib.contextmanager
def sqlite_key_service(
    directory: Path, clock: Clock | None = None, *, authorizer: Authorizer | None = None
) -> Iterator[KeyService]:
    """A key service over SQLite (``store.db``) and a new local root key (``master.key``).

    Both files go into ``directory``; ``clock`` defaults to a fresh
    :class:`~strongroom.kms.ManualClock`; ``authorizer`` to the standard
    :class:`~strongroom.kms.authz.KeyAuthorizer`. The service is closed when the block ends.
    """
    service = KeyService(
        SqliteStore(directory / "store.db"),
        LocalRootOfTrust.create(directory / "master.key"),
        clock if clock is not None else ManualClock(),
        authorizer=authorizer,
    )
    try:
        yield service
    finally:
        service.close()


def describe(service: KeyService, caller: Caller, key: str) -> dict[str, Any]:
    """``DescribeKey``'s ``KeyMetadata`` of ``key``."""
    meta: dict[str, Any] = service.call(caller, "DescribeKey", {"KeyId": key})["KeyMetadata"]
    return meta


def encrypt(service: KeyService, caller: Caller, key: str, plaintext: bytes = b"data") -> bytes:
    """``Encrypt`` ``plaintext`` under ``key``; the ciphertext blob."""
    blob: bytes = service.call(caller, "Encrypt", {"KeyId": key, "Plaintext": plaintext})[
        "CiphertextBlob"
    ]
    return blob


def decrypt(service: KeyService, caller: Caller, blob: bytes) -> bytes:
    """``Decrypt`` ``blob``; the plaintext."""
    plain: bytes = service.call(caller, "Decrypt", {"CiphertextBlob": blob})["Plaintext"]
    return plain
