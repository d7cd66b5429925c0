"""One server process: its key service, the ASGI app over it, and its background work.

Each worker process builds its own :class:`Runtime` after it starts (PKCS#11 sessions and
PostgreSQL connections never cross a fork). Two background threads run beside the event
loop: one appends the queued audit events every ``audit_flush_seconds`` (so each operation
is in the hash-chained log well within a second of its response, in one transaction per
batch), one runs the key service's maintenance (due rotations and deletions, which are
store transactions and so safe in every worker at once) and renews the server
certificate when it nears expiry. Shutdown stops both, flushes the audit one last time
and closes the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from strongroom.api import KmsApi, create_app
from strongroom.api.asgi import Receive, Scope, Send, send_response
from strongroom.crypto.wrap import key_identity
from strongroom.kms import KeyService
from strongroom.kms.caller import AccessKey, Caller
from strongroom.kms.records import GLOBAL_TENANT
from strongroom.mesh.api_ops import MeshApiOps
from strongroom.mesh.identity.ingress import server_credentials
from strongroom.server.metrics import ServerMetrics, multiprocess_exposition, render
from strongroom.server.settings import ServerSettings
from strongroom.tls import (
    SERVER_VALIDITY_DAYS,
    ServerCredentials,
    SubjectNames,
    load_credentials,
    renewal_due,
)

_log = logging.getLogger("strongroom.server")
_PROBE = b"strongroom readiness probe"
ACCESS_KEY_CACHE_SIZE = 4096
AUDIT_WATCH_SECONDS = 0.5
"""How often the audit backlog gauges are refreshed (independently of the flusher)."""


class CachedBackend:
    """The key service as the API sees it, with access key lookups reused for a while.

    A SigV4 request needs its access key's secret, which is stored wrapped by the root of
    trust: looking it up on every request would cost a store read and an unwrap (an HSM
    round trip with PKCS#11). Found keys are reused for ``ttl_seconds``, so revoking one
    takes effect within that time; unknown ids are looked up every time. The mesh
    authority's operations (``StrongroomMesh.*``) run on the same store and root of trust.
    """

    def __init__(
        self,
        service: KeyService,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._mesh = MeshApiOps(service.store, service.root, service.clock, service.audit.record)
        self._ttl = ttl_seconds
        self._clock = clock
        self._keys: dict[str, tuple[float, AccessKey]] = {}
        self.hot_path = service.hot_path
        """Encrypt, Decrypt and GenerateDataKey with typed values (see api.hot_json)."""

    def lookup_access_key(self, access_key_id: str) -> AccessKey | None:
        """Return the access key with this id, or ``None``."""
        now = self._clock()
        hit = self._keys.get(access_key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = self._service.lookup_access_key(access_key_id)
        if found is None:
            self._keys.pop(access_key_id, None)
            return None
        if len(self._keys) >= ACCESS_KEY_CACHE_SIZE:
            self._keys.clear()
        self._keys[access_key_id] = (now + self._ttl, found)
        return found

    def call(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """Run one operation on the key service (the API tried :attr:`hot_path` first)."""
        return self._service.call(caller, operation, request, request_id, direct=False)

    def call_user_keys(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """Run one user-key operation (``StrongroomUserKeys.<Op>``) on the key service."""
        return self._service.call_user_keys(caller, operation, request, request_id)

    def call_mesh(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """Run one mesh operation (``StrongroomMesh.<Op>``): SVIDs for remote agents."""
        self._service.audit.admit()  # fail-closed audit, as KeyService.call
        return self._mesh.call_mesh(caller, operation, request, request_id)


class Runtime:
    """The key service of one process, its app, and the threads that keep it in order."""

    def __init__(
        self,
        settings: ServerSettings,
        service: KeyService,
        registry: CollectorRegistry | None = None,
        tls: tuple[ssl.SSLContext, ServerCredentials] | None = None,
        on_orphaned: Callable[[], None] | None = None,
        supervisor_pid: int | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.backend = CachedBackend(service, settings.access_key_ttl_seconds)
        registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.metrics = ServerMetrics(registry)
        self._exposition = multiprocess_exposition()
        self.api: KmsApi = create_app(
            self.backend,
            registry=registry,
            readiness=self.ready,
            offload=True,
            inline_operations=settings.inline_operations,
        )
        self._tls = tls
        self._on_orphaned = on_orphaned
        # The supervisor's pid comes from the supervisor itself: if it died before this
        # worker got here, os.getppid() would already name init.
        self._supervisor = supervisor_pid
        self._orphan_noted = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        self._audit_failing = False
        self._refused_seen = self._dropped_seen = 0
        self._metrics_lock = threading.Lock()

    # -- the ASGI app ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve HTTP through the KMS app; run start-up and shut-down on lifespan events."""
        if scope["type"] != "lifespan":
            if (
                self._exposition is not None
                and scope["path"] == "/metrics"
                and scope["method"] == "GET"
            ):
                body = render(self._exposition)  # every worker's counters, summed
                content_type = CONTENT_TYPE_LATEST.encode("ascii")
                await send_response(send, 200, body, content_type, str(uuid.uuid4()))
                return
            await self.api(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- readiness ------------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether the store answers a read, the root wraps and unwraps, and audit keeps up.

        Not ready while operations are refused because the audit log cannot be written.
        """
        if self.service.audit.refusing:
            return False
        self.service.store.read(lambda tx: tx.get(GLOBAL_TENANT, "ca", "root"))
        identity = key_identity("readiness", os.getpid())
        root = self.service.root
        return root.unwrap(root.wrap(_PROBE, identity), identity) == _PROBE

    # -- background work ------------------------------------------------------------------

    def start(self) -> None:
        """Start the audit flusher and the maintenance thread."""
        if self._threads:
            return
        for name, target in (
            ("strongroom-audit", self._audit_loop),
            ("strongroom-audit-watch", self._audit_watch_loop),
            ("strongroom-maintenance", self._maintenance_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _audit_loop(self) -> None:
        interval = self.settings.audit_flush_seconds
        while not self._stop.wait(interval):
            self.flush_audit()
            if self.orphaned() and self._on_orphaned is not None:
                if not self._orphan_noted:
                    _log.error("the supervisor process went away: shutting this worker down")
                    self._orphan_noted = True
                self._on_orphaned()  # every round: the server may not have been running yet

    def _audit_watch_loop(self) -> None:
        # the flusher may be stuck in a store that does not answer: the gauges must not be
        while not self._stop.wait(AUDIT_WATCH_SECONDS):
            self.update_audit_metrics()

    def orphaned(self) -> bool:
        """Whether this worker's supervisor has gone away (the worker should stop)."""
        return self._supervisor is not None and os.getppid() != self._supervisor

    def flush_audit(self) -> int:
        """Append every queued audit event now; log (and keep them queued) on failure."""
        audit = self.service.audit
        try:
            written = audit.flush()
        except Exception as exc:
            written = 0
            self.metrics.audit_failures.inc()
            if not self._audit_failing:
                _log.error(
                    "audit flush failed (%s); %d event(s) stay queued and are retried%s",
                    exc,
                    audit.pending(),
                    ""
                    if audit.fail_open
                    else f"; operations are refused once {audit.max_pending} wait",
                )
            self._audit_failing = True
        else:
            if self._audit_failing:
                _log.warning("audit flush works again: %d event(s) written", written)
            self._audit_failing = False
        if written:
            self.metrics.audit_events.inc(written)
            self.metrics.audit_batches.inc()
        self.update_audit_metrics()
        return written

    def update_audit_metrics(self) -> None:
        """Bring the audit backlog gauges and refusal counters up to date."""
        audit = self.service.audit
        with self._metrics_lock:
            self._update_audit_metrics(audit)

    def _update_audit_metrics(self, audit: Any) -> None:
        self.metrics.audit_backlog.set(audit.pending())
        self.metrics.audit_refusing.set(1 if audit.refusing else 0)
        refused, dropped = audit.refused, audit.dropped
        if refused > self._refused_seen:
            self.metrics.audit_refused.inc(refused - self._refused_seen)
        if dropped > self._dropped_seen:
            self.metrics.audit_dropped.inc(dropped - self._dropped_seen)
        self._refused_seen, self._dropped_seen = refused, dropped

    def _maintenance_loop(self) -> None:
        # Workers and nodes started together would otherwise scan for due rotations and
        # deletions at the same moments: spread the first round over half an interval.
        interval = self.settings.maintenance_seconds
        wait = interval * (0.5 + secrets.randbelow(1000) / 2000)
        while not self._stop.wait(wait):
            self.maintain()
            wait = interval

    def maintain(self) -> None:
        """Run one round of maintenance: due rotations and deletions, certificate renewal."""
        try:
            done = self.service.run_maintenance()
            if done["rotated"] or done["deleted"]:
                _log.info(
                    "maintenance: rotated %d key(s), deleted %d key(s)",
                    len(done["rotated"]),
                    len(done["deleted"]),
                )
        except Exception:
            self.metrics.maintenance_failures.inc()
            _log.exception("maintenance failed; retrying next round")
        try:
            self._renew_certificate()
        except Exception:
            self.metrics.maintenance_failures.inc()
            _log.exception("server certificate renewal failed; retrying next round")

    def _renew_certificate(self) -> None:
        if self._tls is None or not self.settings.uses_instance_ca:
            return
        context, current = self._tls
        now = time.time()
        if not renewal_due(current, now, SERVER_VALIDITY_DAYS):
            return
        names = SubjectNames.build((*self.settings.tls_sans, self.settings.host))
        root = self.service.root
        renewed = self.service.store.write(lambda tx: server_credentials(tx, root, names, now))
        self._tls = (context, renewed)
        if self._loop is not None:  # handshakes run on the loop: swap the key there too
            self._loop.call_soon_threadsafe(load_credentials, context, renewed)
        _log.info("server certificate renewed")

    # -- shutdown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the background threads, flush the audit and close the service (once)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=max(30.0, self.settings.maintenance_seconds))
        pending = self.service.audit.pending()
        try:
            self.service.close()
        except Exception:
            _log.exception("closing the key service failed (audit events may be lost)")
            return
        _log.info("stopped: %d queued audit event(s) flushed, key service closed", pending)
