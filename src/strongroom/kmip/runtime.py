"""Wiring the KMIP front-end to a key service in this process.

The front-end uses three public doors of the key service and nothing else:
:meth:`KeyService.call` (through :class:`~strongroom.data.keys.InProcessDataKeys`, and
``CreateKey``/``CreateAlias``/``DescribeKey`` for the tenant's wrapping key),
``KeyService.audit`` (the chained audit log) and ``KeyService.find_tenant``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from strongroom.data.keys import InProcessDataKeys
from strongroom.errors import NotFoundError
from strongroom.kmip.context import Kernel, KmipClient
from strongroom.kmip.objects import ObjectCache
from strongroom.kms.caller import Caller
from strongroom.ports import Clock, Store, StoreTx

if TYPE_CHECKING:
    from strongroom.kms import KeyService

log = logging.getLogger("strongroom.kmip")
T = TypeVar("T")


class SerialWrites:
    """A :class:`Store` whose writes from this process take turns on one lock.

    SQLite lets one writer in at a time and makes the others sleep and retry (1, 2, 5 ms
    and up); a lock in the process queues them instead, so a ``Register`` that meets the
    audit flush waits for that commit only, not for the next retry. Reads are not held.
    Other processes still meet at SQLite's (or PostgreSQL's) own locks.
    """

    def __init__(
        self, store: Store, lock: threading.Lock, on_write: Callable[[], None] | None = None
    ) -> None:
        self._store = store
        self.lock = lock
        self._on_write = on_write

    def read(self, fn: Callable[[StoreTx], T]) -> T:
        """A read transaction of the underlying store."""
        return self._store.read(fn)

    def write(self, fn: Callable[[StoreTx], T]) -> T:
        """A write transaction, once no other writer of this process is in one."""
        with self.lock:
            try:
                return self._store.write(fn)
            finally:
                if self._on_write is not None:
                    self._on_write()

    def close(self) -> None:
        """Close the underlying store."""
        self._store.close()


DEFAULT_KMS_ALIAS = "alias/strongroom-kmip"
"""The KMS key a tenant's KMIP objects are sealed under unless a client names another."""


def build_kernel(
    service: KeyService, store: Store, clock: Clock, write_lock: threading.Lock | None = None
) -> Kernel:
    """The KMIP kernel over ``service`` (objects kept in ``store``, the service's store).

    Writes take ``write_lock``; give the same lock to the :class:`AuditFlusher`.
    """
    providers: dict[str, InProcessDataKeys] = {}
    lock = threading.Lock()

    def keys_for(client: KmipClient) -> InProcessDataKeys:
        found = providers.get(client.fingerprint)
        if found is None:
            with lock:
                if len(providers) > 10_000:
                    providers.clear()
                found = providers.setdefault(
                    client.fingerprint, InProcessDataKeys(service, client.caller)
                )
        return found

    cache = ObjectCache()
    serial = SerialWrites(store, write_lock or threading.Lock(), cache.invalidate)
    return Kernel(serial, keys_for, service.audit, clock, cache)


def ensure_kms_key(service: KeyService, caller: Caller, key: str | None, purpose: str) -> str:
    """The ARN of the KMS key sealing a front-end's keys, created on first use if default.

    ``key`` must exist in the caller's tenant; without it the tenant's
    ``alias/strongroom-<purpose>`` is used (and created).
    """
    alias = key or f"alias/strongroom-{purpose}"
    try:
        meta = service.call(caller, "DescribeKey", {"KeyId": alias})["KeyMetadata"]
        return str(meta["Arn"])
    except NotFoundError:
        if key is not None and not key.startswith("alias/strongroom-"):
            raise
    created = service.call(
        caller,
        "CreateKey",
        {"Description": f"Strongroom {purpose} front-end: seals the tenant's {purpose} keys"},
    )["KeyMetadata"]
    service.call(caller, "CreateAlias", {"AliasName": alias, "TargetKeyId": created["KeyId"]})
    return str(created["Arn"])


class AuditFlusher:
    """A daemon thread appending the queued audit events to the chain twice a second.

    Each flush is one transaction for every event queued since the last (as the KMS API's
    workers do), holding ``write_lock`` (the kernel's) so it queues with object writes.
    """

    def __init__(
        self, service: KeyService, seconds: float = 0.5, write_lock: threading.Lock | None = None
    ) -> None:
        self._service = service
        self._seconds = seconds
        self._lock = write_lock or threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-flush", daemon=True)

    def start(self) -> None:
        """Start flushing."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            self.flush()

    def flush(self) -> None:
        """Flush now (errors are logged; the events stay queued)."""
        try:
            with self._lock:
                self._service.audit.flush()
        except Exception:
            log.exception("audit flush failed")

    def stop(self) -> None:
        """Stop, then flush what is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()
