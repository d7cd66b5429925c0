"""Wiring the KMIP front-end to a key service in this process.

The front-end uses three public doors of the key service and nothing else:
:meth:`KeyService.call` (through :class:`~strongroom.data.keys.InProcessDataKeys`, and
``CreateKey``/``CreateAlias``/``DescribeKey`` for the tenant's wrapping key),
``KeyService.audit`` (the chained audit log) and ``KeyService.find_tenant``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from strongroom.data.keys import InProcessDataKeys
from strongroom.errors import NotFoundError
from strongroom.kmip.context import Kernel, KmipClient
from strongroom.kms.caller import Caller
from strongroom.kms.ports import Clock, Store

if TYPE_CHECKING:
    from strongroom.kms import KeyService

log = logging.getLogger("strongroom.kmip")

DEFAULT_KMS_ALIAS = "alias/strongroom-kmip"
"""The KMS key a tenant's KMIP objects are sealed under unless a client names another."""


def build_kernel(service: KeyService, store: Store, clock: Clock) -> Kernel:
    """The KMIP kernel over ``service`` (objects kept in ``store``, the service's store)."""
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

    return Kernel(store, keys_for, service.audit, clock)


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
    """A daemon thread appending the queued audit events to the chain twice a second."""

    def __init__(self, service: KeyService, seconds: float = 0.5) -> None:
        self._service = service
        self._seconds = seconds
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
            self._service.audit.flush()
        except Exception:
            log.exception("audit flush failed")

    def stop(self) -> None:
        """Stop, then flush what is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()
