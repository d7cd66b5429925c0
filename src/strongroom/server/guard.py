"""What one worker allows a connection: how long, how many, how big, how many per client.

Without these, a client with no credentials holds the server's connections for as long as
it likes: it opens a connection, sends half a request head, and waits (slowloris). The
:class:`ConnectionGuard` of a worker gives every connection a deadline for its next
request (head and body complete), caps the connections of the worker and of each client
address, and, when a cap is reached, makes room by closing the connection that has waited
longest without sending a whole request, so a client that sends its request at once always
gets in. A connection busy with a request is never evicted.
"""

from __future__ import annotations

import resource
from collections import Counter
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


def raise_file_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class ConnectionGuard:
    """The open connections of one worker, and which of them are waiting for a request.

    Runs on the worker's event loop only (no locks). ``waiting`` keeps insertion order:
    the first entry has waited longest and is the first to be evicted.
    """

    def __init__(self, limits: ConnectionLimits, file_limit: int | None = None) -> None:
        self.limits = limits
        cap = limits.max_connections
        if file_limit is not None:
            cap = max(1, min(cap, file_limit - RESERVED_FILES))
        self.max_connections = cap
        self._client: dict[GuardedConnection, str] = {}
        self._waiting: dict[GuardedConnection, None] = {}
        self._per_client: Counter[str] = Counter()
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._client)

    def admit(self, connection: GuardedConnection, client: str) -> bool:
        """Take a new connection (waiting for its first request); ``False``: refuse it."""
        if self._per_client[client] >= self.limits.max_per_client and not self._evict(client):
            self.refused += 1
            return False
        if len(self._client) >= self.max_connections and not self._evict(None):
            self.refused += 1
            return False
        self._client[connection] = client
        self._per_client[client] += 1
        self._waiting[connection] = None
        return True

    def waiting(self, connection: GuardedConnection) -> None:
        """``connection`` is waiting for a (next) request: evictable, newest last."""
        if connection in self._client:
            self._waiting.pop(connection, None)
            self._waiting[connection] = None

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

    def _evict(self, client: str | None) -> bool:
        """Close the longest-waiting connection (of ``client``, if given)."""
        for candidate in self._waiting:
            if client is None or self._client.get(candidate) == client:
                self.release(candidate)
                candidate.evict()
                self.evicted += 1
                return True
        return False
