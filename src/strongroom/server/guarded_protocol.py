"""The server's HTTP protocol: coalesced writes, and the limits of a :class:`ConnectionGuard`.

uvicorn has no deadline for a request's head or body and no cap on connections; this
subclass adds both (see :mod:`strongroom.server.guard`): each connection must deliver a
whole request within ``request_timeout`` of the server starting to wait for it, a request
head larger than ``max_head_bytes`` is answered 431 and closed, a connection serves at most
``max_requests_per_connection`` requests, and the guard admits or evicts connections.

Neither the request deadline nor uvicorn's keep-alive timeout is a timer per request here:
the guard's sweep closes connections whose deadline has passed, and one idle since its last
response for ``keepalive_seconds`` (what uvicorn's keep-alive timer did).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools

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
        self._reading_head = True
        self._head_bytes = 0
        self._requests = 0
        self._max_head_bytes = self.guard.limits.max_head_bytes
        # Answered and nothing received since: the keep-alive limit applies (a new
        # connection has only the request deadline, as with uvicorn's own timer).
        self._idle = False

    @classmethod
    def bound_to(cls, guard: ConnectionGuard) -> type[GuardedHttpToolsProtocol]:
        """A protocol class whose connections all answer to ``guard``."""
        return type("GuardedHttpToolsProtocol", (cls,), {"guard": guard})

    # -- connection life -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Admit the connection (or drop it); its first request's deadline starts now."""
        super().connection_made(transport)
        client = self.client[0] if self.client else "unknown"
        if not self.guard.admit(self, str(client), self.loop.time()):
            transport.abort()
            return
        self.guard.watch(self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self.guard.release(self)
        super().connection_lost(exc)

    def evict(self) -> None:
        """Close this waiting connection now, to make room for a new one."""
        self.transport.abort()

    def timed_out(self) -> None:
        """The request deadline passed (the guard has let the connection go): drop it."""
        if not self.transport.is_closing():
            self.transport.abort()

    def keepalive_expired(self) -> None:
        """Close the connection if nothing came since its last response (keep-alive)."""
        if self._idle and not self.transport.is_closing():
            self.guard.release(self)
            self.transport.close()

    # -- parser callbacks ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a request head that grows past the limit."""
        self._idle = False
        if self._reading_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        if (
            self._reading_head
            and self._head_bytes > self._max_head_bytes
            and not self.transport.is_closing()
        ):
            self.guard.busy(self)
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
        self.guard.busy(self)
        if (
            self._requests >= self.guard.limits.max_requests_per_connection
            and self.cycle is not None
        ):
            self.cycle.keep_alive = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """The response is out: start the next request of the pipeline, or wait for one.

        uvicorn's own, but for its keep-alive timer: waiting starts the next request's
        deadline and, with nothing received meanwhile, the keep-alive limit.
        """
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle = True
        self.guard.waiting(self, self.loop.time())
