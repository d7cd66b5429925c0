"""Connection limits of the Workload API socket: a cap on open connections, an idle deadline.

The agent's socket is open to every local process (attestation decides what a caller
gets), so a process could otherwise open connections without end, or open one and never
send a request. :class:`GuardedServer` is grpclib's server with each connection wrapped:
past ``max_connections`` open ones a new connection is closed at once, and a connection
with no call in flight that has sent nothing for ``idle_seconds`` is closed. A streaming
``FetchX509SVID`` (a call in flight for as long as the workload runs) is never cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grpclib.server import Server

MAX_CONNECTIONS = 1024
"""Open connections to one agent socket (each workload needs one or two)."""
IDLE_SECONDS = 10.0
"""How long a connection with no call in flight may stay silent (half-sent prefaces too)."""


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """The limits of one agent socket."""

    max_connections: int = MAX_CONNECTIONS
    idle_seconds: float = IDLE_SECONDS


class _Count:
    """Open connections of one server (touched from its event loop only)."""

    def __init__(self) -> None:
        self.open = 0


class _GuardedProtocol(asyncio.Protocol):
    """One connection: grpclib's HTTP/2 protocol inside, the limits around it."""

    def __init__(self, make_inner: Callable[[], Any], limits: AgentLimits, count: _Count) -> None:
        self._make_inner = make_inner
        self._inner: Any = None
        self._limits = limits
        self._count = count
        self._counted = False
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream socket's transport
        if self._count.open >= self._limits.max_connections:
            transport.abort()  # over the cap: closed before grpclib sees it
            return
        self._count.open += 1
        self._counted = True
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._timer = loop.call_later(self._limits.idle_seconds, self._check_idle)
        self._inner = self._make_inner()  # only for connections within the cap
        self._inner.connection_made(transport)

    def _busy(self) -> bool:
        tasks = getattr(getattr(self._inner, "handler", None), "_tasks", {})
        return any(not task.done() for task in tasks.values())

    def _check_idle(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        silent = loop.time() - self._last
        if silent >= self._limits.idle_seconds and not self._busy():
            self._transport.abort()
            return
        wait = max(self._limits.idle_seconds - silent, self._limits.idle_seconds / 4)
        self._timer = loop.call_later(wait, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self._last = asyncio.get_running_loop().time()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is None:
            return None
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._counted:
            return
        self._counted = False
        self._count.open -= 1
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None
        self._inner.connection_lost(exc)


class GuardedServer(Server):
    """grpclib's :class:`~grpclib.server.Server` with :class:`AgentLimits` on every connection."""

    def __init__(self, handlers: list[Any], limits: AgentLimits | None = None) -> None:
        super().__init__(handlers)
        self.limits = limits or AgentLimits()
        self._count = _Count()

    @property
    def open_connections(self) -> int:
        """Connections open now."""
        return self._count.open

    def _protocol_factory(self) -> Any:
        return _GuardedProtocol(super()._protocol_factory, self.limits, self._count)
