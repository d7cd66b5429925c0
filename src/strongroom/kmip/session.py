"""One KMIP connection after its TLS handshake: framing, timeouts, dispatch of requests.

Bytes are buffered until a whole message is in (its length read from the 8-byte header and
checked against the cap first). Quick requests are answered on the event loop; the others
go to the server's worker threads, and the connection reads nothing more until the answer
is back (requests on one connection are answered in order). Answers are written once the
loop iteration has read and answered every request that came in. One timer per connection
enforces the idle timeout between messages and the read timeout inside one.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, cast

from strongroom.kmip.context import KmipClient
from strongroom.kmip.engine import is_quick
from strongroom.kmip.tags import ResultReason
from strongroom.kmip.ttlv import HEADER_BYTES, TtlvError, message_length

if TYPE_CHECKING:
    from strongroom.kmip.server import KmipServer

log = logging.getLogger("strongroom.kmip")

GONE = (OSError, ssl.SSLError, TimeoutError, ConnectionError, asyncio.CancelledError)
"""What a peer that went away (or never finished its handshake) raises."""


class KmipSession(asyncio.Protocol):
    """One TLS connection: framing, timeouts and the dispatch of each request."""

    def __init__(self, server: KmipServer) -> None:
        self._server = server
        self._limits = server.limits
        self._transport: asyncio.Transport | None = None
        self._client: KmipClient | None = None
        self._buffer = bytearray()
        self._busy = False  # a request is on a worker thread; later ones wait in the buffer
        self._paused = False  # the peer does not read its answers: stop reading its requests
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._out: list[bytes] = []
        self._closing = False
        self._ready = False  # the client is looked up: requests may be answered

    # -- connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """TLS is up: look the client's certificate up, then take requests."""
        self._transport = tls = cast(asyncio.Transport, transport)
        peer = tls.get_extra_info("ssl_object")
        der = peer.getpeercert(binary_form=True) if peer is not None else None
        try:
            self._client = self._server.resolve(der) if der else None
        except Exception:  # the store failed: no session, and say why in the log
            log.exception("KMIP client lookup failed")
            self.abort()
            return
        self._ready = True
        self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._closing = True
        self._cancel_timer()
        self._server.open.discard(self)

    def abort(self) -> None:
        """Drop the connection now."""
        self._closing = True
        self._cancel_timer()
        self._server.open.discard(self)
        if self._transport is not None:
            self._transport.abort()

    def pause_writing(self) -> None:
        """The peer reads slowly: read no more requests until it catches up."""
        self._paused = True
        self._reading(False)

    def resume_writing(self) -> None:
        """The peer caught up."""
        self._paused = False
        self._reading(True)
        self._process()

    # -- framing ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Buffer the bytes and answer every complete message in them."""
        self._buffer += data
        self._process()

    def _process(self) -> None:
        buffer, limits = self._buffer, self._limits
        while self._ready and not (self._busy or self._paused or self._closing):
            if len(buffer) < HEADER_BYTES:
                self._arm(limits.read_timeout_s if buffer else limits.idle_timeout_s)
                return
            try:
                total = message_length(bytes(buffer[:HEADER_BYTES]))
            except TtlvError as exc:
                self._refuse(ResultReason.INVALID_MESSAGE, str(exc))
                return
            if total > limits.max_message_bytes:
                self._refuse(ResultReason.INVALID_MESSAGE, "message too large")
                return
            if len(buffer) < total:
                self._arm(limits.read_timeout_s)
                return
            message = bytes(buffer[:total])
            del buffer[:total]
            self._dispatch(message)

    def _dispatch(self, message: bytes) -> None:
        client = self._client
        if client is None:
            reason = ResultReason.AUTHENTICATION_NOT_SUCCESSFUL
            self._refuse(reason, "this certificate is not mapped to a KMIP client")
            return
        engine = self._server.engine
        prepared = engine.prepare(message, client)
        if isinstance(prepared, bytes):
            self._answer(prepared)
        elif is_quick(prepared):
            self._answer(engine.respond(prepared, client))
        else:
            self._busy = True
            self._reading(False)
            self._disarm()
            loop = asyncio.get_running_loop()
            done = loop.run_in_executor(self._server.pool, engine.respond, prepared, client)
            done.add_done_callback(self._answered)

    def _answered(self, done: asyncio.Future[bytes]) -> None:
        self._busy = False
        if done.cancelled() or self._closing:
            return
        failure = done.exception()
        if failure is not None:  # respond() answers every failure itself: this is a bug
            log.error("KMIP request failed", exc_info=failure)
            self.abort()
            return
        self._answer(done.result())
        self._reading(True)
        self._process()

    def _answer(self, response: bytes) -> None:
        # Sent once this loop iteration has read and answered every request that came in:
        # a send wakes a client, which may take the core from the loop; better after the
        # other clients' requests are answered than between them.
        self._out.append(response)
        if len(self._out) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self._transport is not None and not self._closing:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _refuse(self, reason: ResultReason, text: str) -> None:
        """Answer with an error, then close (the framing is lost or the client unknown)."""
        self._answer(self._server.refusal(reason, text))
        self._flush()
        self._closing = True
        self._disarm()
        if self._transport is not None:
            self._transport.close()  # after the buffered answer is sent

    # -- timers and reading -------------------------------------------------------------

    def _reading(self, on: bool) -> None:
        transport = self._transport
        if transport is None or self._closing or transport.is_closing():
            return
        if on and not (self._busy or self._paused):
            transport.resume_reading()
        elif not on:
            transport.pause_reading()

    def _arm(self, seconds: float) -> None:
        # One timer per connection, moved only when the deadline comes nearer: a request
        # costs a clock read, not a timer handle (the timer re-checks when it fires)
        loop = asyncio.get_running_loop()
        self._deadline = deadline = loop.time() + seconds
        if self._timer is None or self._timer.when() > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._expired)

    def _disarm(self) -> None:
        self._deadline = None

    def _cancel_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self._closing:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < deadline:
            self._timer = loop.call_at(deadline, self._expired)
        else:
            self.abort()
