"""uvicorn's httptools protocol, sending each response head and body in one write.

uvicorn writes a response's status line and headers as soon as the app starts the
response, then the body in a second write. Over TLS that is two records and two
``send`` calls per response, and on loopback or virtual networks a ``send`` is the most
expensive step of a small request. :class:`CoalescingHttpToolsProtocol` hands uvicorn a
transport that holds a response head back until the next write (the body), the close
of the connection, or the end of the current event loop step, and then sends both at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD = b"HTTP/1.1 "
_CONTINUE = b"HTTP/1.1 100"


class CoalescingTransport:
    """Wraps a transport: a response head waits to go out together with what follows it."""

    __slots__ = ("_scheduled", "_transport", "held")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.held: bytes | None = None
        """A response head waiting for what follows it (read on the inline path)."""
        self._scheduled = False

    def write(self, data: bytes) -> None:
        """Send ``data``; hold a response head back (never a ``100 Continue``)."""
        if self.held is None and data.startswith(_HEAD) and not data.startswith(_CONTINUE):
            self.held = data
            if not self._scheduled:
                # An app that never sends a body still gets its head out this loop step.
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush_later)
            return
        if self.held is not None:
            data = self.held + data
            self.held = None
        self._transport.write(data)

    def _flush_later(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send a held response head now."""
        if self.held is not None:
            held, self.held = self.held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        """Send what is held, then close."""
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is held and the connection."""
        self.held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        """Whether the connection is closing (asked on every request: no ``__getattr__``)."""
        return bool(self._transport.is_closing())

    def get_write_buffer_size(self) -> int:
        """Bytes waiting to be sent, including a held head."""
        held = len(self.held) if self.held is not None else 0
        return held + int(self._transport.get_write_buffer_size())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Serve the connection through a coalescing wrapper of ``transport``."""
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]
