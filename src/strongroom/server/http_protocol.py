"""uvicorn's httptools protocol, sending each response head and body in one write.

uvicorn writes a response's status line and headers as soon as the app starts the
response, then the body in a second write. Over TLS that is two records and two
``send`` calls per response, and on loopback or virtual networks a ``send`` is the most
expensive step of a small request. :class:`CoalescingHttpToolsProtocol` hands uvicorn a
transport that holds a response head back until the next write (the body), the close
of the connection, or the end of the current event loop step, and then sends both at once.

The server's inline path (:mod:`strongroom.server.inline_protocol`) holds whole responses
the same way: each goes out at the end of the loop step in which its request was read,
together with the others answered in that step (:class:`StepFlush`, one callback per step
for all connections). Sending a step's answers back to back, after all its requests were
read and served, wakes a client on the same machine once per step rather than once per
answer: on a loaded two-core machine the worker is preempted about half as often and
spends 15-20% less CPU per request (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD = b"HTTP/1.1 "
YIELD_SECONDS = 0.0005
"""How long the event loop sleeps at a step's end while :attr:`StepFlush.behind` holds."""
_CONTINUE = b"HTTP/1.1 100"


class StepFlush:
    """The connections of one event loop holding data until the end of the current step.

    One ``call_soon`` per loop step flushes them all, in the order they began to hold.
    """

    __slots__ = ("_loop", "behind", "holding", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.holding: list[CoalescingTransport] = []
        """The connections to flush at the end of this step, in order."""
        self.scheduled = False
        """Whether :meth:`flush` is due at the end of this step."""
        self.behind: Callable[[], bool] | None = None
        """Whether a background thread of this process (the audit flusher) lags: then the
        loop sleeps :data:`YIELD_SECONDS` after the step's answers are out. A loop that
        never blocks takes the GIL back hundreds of times a millisecond, and a waiting
        thread only asks for it when none of those happened for a whole switch interval;
        the sleep hands it over."""

    def hold(self, transport: CoalescingTransport) -> None:
        """Flush ``transport`` at the end of this loop step."""
        self.holding.append(transport)
        if not self.scheduled:
            self.scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what every holding connection holds (the step's end)."""
        self.scheduled = False
        holding, self.holding = self.holding, []
        for transport in holding:
            # CoalescingTransport.flush, inlined: one frame per step, not one per answer
            transport.queued = False
            held = transport.held
            if held is not None:
                transport.held = None
                inner = transport._transport
                if not inner.is_closing():
                    inner.write(held)
        behind = self.behind
        if behind is not None and behind():
            time.sleep(YIELD_SECONDS)


_STEPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StepFlush] = (
    weakref.WeakKeyDictionary()
)


def step_flush(loop: asyncio.AbstractEventLoop) -> StepFlush:
    """The :class:`StepFlush` of ``loop`` (one per loop)."""
    step = _STEPS.get(loop)
    if step is None:
        step = _STEPS[loop] = StepFlush(loop)
    return step


class CoalescingTransport:
    """Wraps a transport: a response head waits to go out together with what follows it."""

    __slots__ = ("_step", "_transport", "held", "queued")

    def __init__(self, transport: Any, step: StepFlush) -> None:
        self._transport = transport
        self._step = step
        self.held: bytes | None = None
        """Data waiting for what follows it or for the end of the loop step."""
        self.queued = False
        """Whether :attr:`_step` flushes this at the end of the loop step."""

    def write(self, data: bytes) -> None:
        """Send ``data``; hold a response head back (never a ``100 Continue``)."""
        if self.held is None and data.startswith(_HEAD) and not data.startswith(_CONTINUE):
            # An app that never sends a body still gets its head out this loop step.
            self.hold(data)
            return
        if self.held is not None:
            data = self.held + data
            self.held = None
        self._transport.write(data)

    def hold(self, data: bytes) -> None:
        """Send ``data`` with the next write, on close, or at the end of the loop step.

        Whatever was held before goes first (it is sent now).
        """
        if self.held is not None:
            self.flush()
        self.held = data
        if not self.queued:
            self.queued = True
            self._step.hold(self)

    def flush(self) -> None:
        """Send held data now."""
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
        coalescing = CoalescingTransport(transport, step_flush(self.loop))
        super().connection_made(coalescing)  # type: ignore[arg-type]
