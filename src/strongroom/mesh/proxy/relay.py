"""The byte relay between two asyncio transports (plain TCP or TLS), with backpressure.

Each socket has a :class:`Pipe` protocol; two pipes are :meth:`Pipe.attach`-ed to each
other. Bytes received on one side are written to the other's transport as they come (no
copy, no task, no await: one ``transport.write`` per read). When a side's write buffer
passes its high-water mark, asyncio calls ``pause_writing`` on that side's protocol, which
pauses reading on the *other* transport until the buffer drains (``resume_writing``).

End of stream: TLS (as asyncio runs it) cannot half-close, so an EOF or a close on either
side closes the other after its pending writes are flushed. Protocols that half-close a
connection and then wait for an answer are therefore not carried across a sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import cast

WRITE_HIGH_WATER = 1 << 20
"""Bytes buffered for a slow receiver before reading from its sender pauses (1 MiB)."""


@dataclass(slots=True)
class ProxyStats:
    """Counters of one proxy (read by tests and logged at shutdown)."""

    accepted: int = 0
    denied: int = 0
    handshake_failures: int = 0
    peer_handshakes: int = 0
    peer_resumed: int = 0
    pool_hits: int = 0
    pool_misses: int = 0
    peer_refused: int = 0
    upstream_failures: int = 0
    rotations: int = 0


class Pipe(asyncio.Protocol):
    """One side of a relay; data that arrives before the other side is attached waits."""

    inspects = False
    """Subclasses that look at the first bytes call :meth:`go_direct` themselves."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Pipe | None = None
        self.pending: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport and set a large write buffer."""
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def attach(self, other: Pipe) -> None:
        """Join this side and ``other``; flush what each received meanwhile, resume both."""
        self.peer, other.peer = other, self
        for side in (self, other):
            target = side.peer
            assert target is not None and target.transport is not None
            if side.pending:
                target.transport.write(b"".join(side.pending))
                side.pending = []
            if side.closed:
                target.transport.close()
            elif side.transport is not None:
                if not side.inspects:
                    side.go_direct()
                side.transport.resume_reading()

    def go_direct(self) -> None:
        """From now on hand received bytes straight to the other side's ``write``.

        The bound ``write`` of the other transport replaces this protocol's
        ``data_received``, so a relayed read costs no Python frame of ours. uvloop keeps
        a reference to a plain transport's ``data_received``: setting the protocol again
        refreshes it.
        """
        peer = self.peer
        transport = self.transport
        if peer is None or peer.transport is None or transport is None or self.closed:
            return
        self.data_received = peer.transport.write  # type: ignore[method-assign]
        transport.set_protocol(self)

    def data_received(self, data: bytes) -> None:
        """Forward ``data`` to the other side (or keep it until there is one)."""
        peer = self.peer
        if peer is not None:
            peer.transport.write(data)  # type: ignore[union-attr]
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        """Close both sides once the other side's writes are flushed."""
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Close the other side (after its pending writes)."""
        self.closed = True
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        """Our buffer is full: stop reading from the side that fills it."""
        peer = self.peer
        if peer is not None and peer.transport is not None:
            with contextlib.suppress(RuntimeError, AttributeError):
                peer.transport.pause_reading()

    def resume_writing(self) -> None:
        """Our buffer drained: read from the other side again."""
        peer = self.peer
        if peer is not None and peer.transport is not None:
            with contextlib.suppress(RuntimeError, AttributeError):
                peer.transport.resume_reading()

    def close(self) -> None:
        """Close this side's transport (pending writes are flushed first)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()
