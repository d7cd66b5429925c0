"""The server's HTTP protocol: coalesced writes, and the limits of a :class:`ConnectionGuard`.

uvicorn has no deadline for a request's head or body and no cap on connections; this
subclass adds both (see :mod:`strongroom.server.guard`): each connection must deliver a
whole request within ``request_timeout`` of the server starting to wait for it, a request
head larger than ``max_head_bytes`` is answered 431 and closed, a connection serves at most
``max_requests_per_connection`` requests, and the guard admits or evicts connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strongroom.server.guard import ConnectionGuard
from strongroom.server.http_protocol import CoalescingHttpToolsProtocol

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


class GuardedHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """One connection under its worker's :class:`ConnectionGuard` (``guard``, per class)."""

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_head = True
        self._head_bytes = 0
        self._requests = 0

    @classmethod
    def bound_to(cls, guard: ConnectionGuard) -> type[GuardedHttpToolsProtocol]:
        """A protocol class whose connections all answer to ``guard``."""
        return type("GuardedHttpToolsProtocol", (cls,), {"guard": guard})

    # -- connection life -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Admit the connection (or drop it) and start its first request's deadline."""
        super().connection_made(transport)
        client = self.client[0] if self.client else "unknown"
        if not self.guard.admit(self, str(client)):
            transport.abort()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._disarm()
        self.guard.release(self)
        super().connection_lost(exc)

    def evict(self) -> None:
        """Close this waiting connection now, to make room for a new one."""
        self._disarm()
        self.transport.abort()

    # -- deadlines -------------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(
            self.guard.limits.request_timeout, self._request_timed_out
        )

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _request_timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.guard.release(self)
            self.transport.abort()

    # -- parser callbacks ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a request head that grows past the limit."""
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._reading_head
            and self._head_bytes > self.guard.limits.max_head_bytes
            and not self.transport.is_closing()
        ):
            self._disarm()
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_headers_complete(self) -> None:
        """The head is in: the body may follow."""
        self._reading_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """A whole request is in: no deadline while it is served."""
        self._reading_head = True
        self._requests += 1
        self._disarm()
        self.guard.busy(self)
        if (
            self._requests >= self.guard.limits.max_requests_per_connection
            and self.cycle is not None
        ):
            self.cycle.keep_alive = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """The response is out: wait for the next request, with a new deadline."""
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self.guard.waiting(self)
            self._arm()
