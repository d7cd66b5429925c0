"""Outbound mTLS connections to one peer: a pool of ready connections, session resumption.

A plain TCP relay cannot hand one upstream connection to several clients (it does not know
where one client's protocol exchange ends), so the pool keeps ``pool_size`` connections
that are *handshaken and checked but unused*: a new client takes one and the pool
replaces it in the background. Each pooled connection carries exactly one client. The
handshake cost moves off the client's path; resumption makes it cheaper: every connection
offers the TLS 1.3 session of an earlier connection
(:class:`ResumingClientContext`), so a resumed handshake skips certificate transfer,
signatures and chain verification.

A pooled connection older than ``pool_max_idle`` seconds, or closed by the peer meanwhile,
is dropped instead of used. After a failed connect the pool waits (0.1 s doubling to 5 s)
before trying again; clients that find the pool empty still connect on their own.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable

from strongroom.mesh.proxy.peer_check import PeerVerifier
from strongroom.mesh.proxy.policy import OutboundListener
from strongroom.mesh.proxy.relay import Pipe, ProxyStats
from strongroom.mesh.proxy.tls import ResumingClientContext

_log = logging.getLogger("strongroom.mesh.proxy.sidecar")

HANDSHAKE_TIMEOUT = 10.0
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0


class PeerConn(Pipe):
    """The TLS side of an outbound relay; hands its new session ticket to its context."""

    def __init__(self) -> None:
        super().__init__()
        self.born = 0.0
        self.ticket_seen = False

    def remember_ticket(self) -> None:
        """Give the connection's session to the context if it wants one (and the ticket came)."""
        transport = self.transport
        if transport is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            ctx = ssl_object.context
            self.ticket_seen = not ctx.wants_session() or ctx.remember(ssl_object)

    inspects = True

    def data_received(self, data: bytes) -> None:
        """The first time, keep the ticket (it came before any data), then relay directly."""
        if not self.ticket_seen:
            self.remember_ticket()
            self.ticket_seen = True
        super().data_received(data)
        if self.peer is not None:
            self.go_direct()


class PeerPool:
    """Connects to one outbound listener's peer and keeps ready connections."""

    def __init__(
        self,
        listener: OutboundListener,
        context: Callable[[], ResumingClientContext],
        verifier: PeerVerifier,
        stats: ProxyStats,
    ) -> None:
        self._listener = listener
        self._context = context
        self._verifier = verifier
        self._stats = stats
        self._allowed = frozenset({listener.peer_id})
        self._idle: deque[PeerConn] = deque()
        self._filling = 0
        self._backoff = 0.0
        self._retry_at = 0.0
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def connect(self) -> PeerConn | None:
        """A new checked mTLS connection to the peer, or ``None`` (logged) if that failed."""
        loop = asyncio.get_running_loop()
        listener = self._listener
        ctx = self._context()
        try:
            transport, conn = await loop.create_connection(
                PeerConn,
                listener.peer.host,
                listener.peer.port,
                ssl=ctx,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self._stats.peer_refused += 1
            _log.warning(
                "outbound connect failed",
                extra={
                    "fields": {
                        "listener": listener.name,
                        "peer": str(listener.peer),
                        "error": str(exc) or type(exc).__name__,
                    }
                },
            )
            return None
        ssl_object = transport.get_extra_info("ssl_object")
        peer, reason = self._verifier.check(ssl_object.getpeercert(True), self._allowed)
        if reason:
            self._stats.peer_refused += 1
            transport.abort()
            _log.warning(
                "outbound peer refused",
                extra={
                    "fields": {
                        "listener": listener.name,
                        "peer": str(listener.peer),
                        "peer_id": peer.spiffe_id if peer else None,
                        "reason": reason,
                    }
                },
            )
            return None
        self._stats.peer_handshakes += 1
        if ssl_object.session_reused:
            self._stats.peer_resumed += 1
        else:
            ctx.forget(ssl_object)  # the peer declined it: take the next connection's
        conn.born = loop.time()
        return conn

    def take(self) -> PeerConn | None:
        """A ready connection (used once), or ``None``; schedules a refill either way."""
        loop = asyncio.get_running_loop()
        oldest = loop.time() - self._listener.pool_max_idle
        found = None
        while self._idle:
            conn = self._idle.popleft()
            if conn.closed or conn.pending or conn.born < oldest:
                conn.close()
                continue
            found = conn
            break
        if found is not None:
            self._stats.pool_hits += 1
            found.remember_ticket()
        else:
            self._stats.pool_misses += 1
        self.refill()
        return found

    def refill(self) -> None:
        """Start connects until ready + connecting reaches ``pool_size`` (unless backing off)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return
        while len(self._idle) + self._filling < self._listener.pool_size:
            self._filling += 1
            task = loop.create_task(self._fill_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fill_one(self) -> None:
        try:
            conn = await self.connect()
        finally:
            self._filling -= 1
        loop = asyncio.get_running_loop()
        if conn is None:
            self._backoff = min(BACKOFF_MAX, max(BACKOFF_MIN, self._backoff * 2))
            self._retry_at = loop.time() + self._backoff
            loop.call_later(self._backoff, self.refill)
            return
        self._backoff = 0.0
        if self._closed:
            conn.close()
        else:
            self._idle.append(conn)

    @property
    def ready(self) -> int:
        """Ready connections waiting in the pool."""
        return len(self._idle)

    def drain(self) -> None:
        """Close the ready connections (after a rotation) and make new ones."""
        while self._idle:
            self._idle.popleft().close()
        self.refill()

    def close(self) -> None:
        """Close ready connections and stop refilling."""
        self._closed = True
        while self._idle:
            self._idle.popleft().close()
        for task in list(self._tasks):
            task.cancel()
