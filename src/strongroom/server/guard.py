"""What one worker allows a connection: how long, how many, how big, how many per client.

Without these, a client with no credentials holds the server's connections for as long as
it likes: it opens a connection, sends half a request head, and waits (slowloris). The
:class:`ConnectionGuard` of a worker gives every connection a deadline for its next
request (head and body complete), caps the connections of the worker and of each client
address, and, when a cap is reached, makes room by closing the connection that has waited
longest without sending a whole request, so a client that sends its request at once always
gets in. A connection busy with a request is never evicted.

Deadlines are not a timer per request: every waiting connection has the same limits, so
the order in which connections started waiting is also the order of their deadlines, and
one sweep per worker a few times a second (:meth:`ConnectionGuard.sweep`) closes the ones
whose time is up, looking no further than the first that is not. A request answered in
microseconds then costs a dictionary update, not a timer armed and cancelled.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Protocol

REQUEST_TIMEOUT_SECONDS = 10.0
"""How long a connection may take to send a whole request (head and body), counted from
the moment the server started waiting for it (accept, or the end of the previous one)."""
HANDSHAKE_TIMEOUT_SECONDS = 10.0
"""How long a TLS handshake may take."""
KEEPALIVE_SECONDS = 5
"""How long an idle keep-alive connection stays open."""
MAX_CONNECTIONS = 8192
"""Open connections per worker (lowered to what the process's file limit allows)."""
MAX_CONNECTIONS_PER_CLIENT = 1024
"""Open connections per worker from one client address."""
MAX_REQUESTS_PER_CONNECTION = 100_000
"""Requests served on one keep-alive connection before it is closed."""
MAX_HEAD_BYTES = 64 * 1024
"""Request line and headers; AWS clients send about 1 KiB."""
RESERVED_FILES = 128
"""File descriptors kept for the store, logs, the root of trust and the listener."""
SWEEP_SECONDS = 0.25
"""How often a worker looks for connections past their deadline (shorter for short limits:
a quarter of the shortest, at least ``MIN_SWEEP_SECONDS``); a deadline is kept this late
at worst."""
MIN_SWEEP_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits one worker applies (defaults as above; each is a ``server`` flag)."""

    request_timeout: float = REQUEST_TIMEOUT_SECONDS
    handshake_timeout: float = HANDSHAKE_TIMEOUT_SECONDS
    keepalive_seconds: int = KEEPALIVE_SECONDS
    max_connections: int = MAX_CONNECTIONS
    max_per_client: int = MAX_CONNECTIONS_PER_CLIENT
    max_requests_per_connection: int = MAX_REQUESTS_PER_CONNECTION
    max_head_bytes: int = MAX_HEAD_BYTES


class GuardedConnection(Protocol):
    """What the guard needs of a connection."""

    def evict(self) -> None:
        """Close the connection now (it is waiting for a request)."""

    def timed_out(self) -> None:
        """Close the connection now: its request deadline passed (the guard let it go)."""

    def keepalive_expired(self) -> None:
        """Close the connection if it has been idle since its last response (keep-alive)."""


def raise_file_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class ConnectionGuard:
    """The open connections of one worker, and which of them are waiting for a request.

    Runs on the worker's event loop only (no locks). ``waiting`` maps each waiting
    connection to the loop time it started waiting, in insertion order: the first entry
    has waited longest, is the first to be evicted and the first whose deadline passes.
    """

    def __init__(self, limits: ConnectionLimits, file_limit: int | None = None) -> None:
        self.limits = limits
        cap = limits.max_connections
        if file_limit is not None:
            cap = max(1, min(cap, file_limit - RESERVED_FILES))
        self.max_connections = cap
        self._client: dict[GuardedConnection, str] = {}
        self._waiting: dict[GuardedConnection, float] = {}
        self._per_client: Counter[str] = Counter()
        self.evicted = 0
        self.refused = 0
        self.expired = 0
        first = min(limits.request_timeout, float(limits.keepalive_seconds))
        self.sweep_seconds = max(MIN_SWEEP_SECONDS, min(SWEEP_SECONDS, first / 4))
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_loop: asyncio.AbstractEventLoop | None = None
        self.on_release: Callable[[], None] | None = None
        """Called whenever a connection is released (the worker's count of connections
        among its peers', :mod:`strongroom.server.balance`, which counts admissions)."""

    def __len__(self) -> int:
        return len(self._client)

    def admit(self, connection: GuardedConnection, client: str, now: float = 0.0) -> bool:
        """Take a new connection, waiting for its first request since ``now`` (loop time).

        ``False``: refused (full, and no waiting connection to evict).
        """
        if self._per_client[client] >= self.limits.max_per_client and not self._evict(client):
            self.refused += 1
            return False
        if len(self._client) >= self.max_connections and not self._evict(None):
            self.refused += 1
            return False
        self._client[connection] = client
        self._per_client[client] += 1
        self._waiting[connection] = now
        return True

    def books(
        self,
    ) -> tuple[Mapping[GuardedConnection, str], MutableMapping[GuardedConnection, float]]:
        """The open connections, and the waiting ones in order (for a protocol's hot path).

        A connection may do what :meth:`waiting` does on these itself (a call less per
        request); everything else goes through the methods.
        """
        return self._client, self._waiting

    def waiting(self, connection: GuardedConnection, now: float = 0.0) -> None:
        """``connection`` waits for a (next) request since ``now``: evictable, newest last."""
        if connection in self._client:
            waiting = self._waiting
            waiting.pop(connection, None)
            waiting[connection] = now

    def busy(self, connection: GuardedConnection) -> None:
        """``connection`` sent a whole request: not evictable until it waits again."""
        self._waiting.pop(connection, None)

    def release(self, connection: GuardedConnection) -> None:
        """``connection`` is closed."""
        client = self._client.pop(connection, None)
        self._waiting.pop(connection, None)
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]
            if self.on_release is not None:
                self.on_release()

    def _evict(self, client: str | None) -> bool:
        """Close the longest-waiting connection (of ``client``, if given)."""
        for candidate in self._waiting:
            if client is None or self._client.get(candidate) == client:
                self.release(candidate)
                candidate.evict()
                self.evicted += 1
                return True
        return False

    # -- deadlines ---------------------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """Close the connections whose request deadline (or idle keep-alive) is past at ``now``.

        Connections waited in ``waiting``'s order, so the walk stops at the first whose
        earliest limit is still ahead; one that sent part of a request sits past its
        keep-alive limit until its request deadline, and is looked at again each sweep.
        """
        limits = self.limits
        deadline = limits.request_timeout
        first = min(deadline, float(limits.keepalive_seconds))
        due = []
        for connection, since in self._waiting.items():
            if since + first > now:
                break
            due.append((connection, since))
        for connection, since in due:
            if since + deadline <= now:
                self.release(connection)
                self.expired += 1
                connection.timed_out()
            elif connection in self._waiting:
                connection.keepalive_expired()

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sweep on ``loop`` every :attr:`sweep_seconds` while there are connections."""
        if self._sweeper is None or self._sweep_loop is not loop:
            # (a guard moved to another loop, as tests do, sweeps there from now on)
            if self._sweeper is not None:
                self._sweeper.cancel()
            self._sweep_loop = loop
            self._sweeper = loop.call_later(self.sweep_seconds, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        self.sweep(loop.time())
        if self._client:
            self.watch(loop)
