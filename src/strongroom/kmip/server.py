"""The KMIP listener: TLS with required client certificates on one event loop (uvloop).

One thread runs the loop and every connection on it: the TLS handshake, framing, and the
requests that only read (``Get``, ``Encrypt``, ``Decrypt``, ``MAC``, attribute reads,
``Query``), which take well under a millisecond and so run where they arrive, with no
hand-off between threads and no GIL hand-over under load. Requests that commit to the
store (``Create``, ``Register``, state changes, ``ReKey``) or scan a tenant (``Locate``)
go to a small pool of worker threads, so an fsync never stalls the loop; the answer is
written back by the loop.

Hardening, as the KMS API has it: a cap on open connections (the next one is closed
before its handshake), a handshake timeout, an idle timeout between requests and a read
timeout inside one, a message size cap read from the 8-byte header before the body is
read, and every malformed message answered with a KMIP error response (the connection is
closed when the framing itself is lost). A certificate the CA signed but that maps to no
client gets an Authentication Not Successful response. Nothing a client sends can raise
out of a connection's task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import uvloop

from strongroom.kmip.context import KmipClient
from strongroom.kmip.engine import KmipEngine
from strongroom.kmip.messages import error_message
from strongroom.kmip.session import GONE, KmipSession
from strongroom.kmip.tags import ResultReason
from strongroom.kmip.ttlv import encode

log = logging.getLogger("strongroom.kmip")

DEFAULT_PORT = 5696


@dataclass(frozen=True, slots=True)
class Limits:
    """The listener's bounds."""

    max_connections: int = 256
    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 120.0
    read_timeout_s: float = 10.0
    max_message_bytes: int = 2 << 20
    workers: int = 4
    """Threads for requests that write or scan (reads run on the event loop)."""


class KmipServer:
    """Serve a :class:`KmipEngine` on ``host:port`` over mutually authenticated TLS."""

    def __init__(
        self,
        engine: KmipEngine,
        resolve: Callable[[bytes], KmipClient | None],
        context: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        limits: Limits | None = None,
    ) -> None:
        self.engine = engine
        self.resolve = resolve
        self.context = context
        self.limits = limits or Limits()
        self.pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="kmip-worker")
        self.open: set[KmipSession] = set()
        self._listener = socket.create_server((host, port), backlog=1024, reuse_port=False)
        self._listener.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        return int(self._listener.getsockname()[1])

    def start(self) -> None:
        """Serve on a background thread; return once connections are accepted."""
        self._thread = threading.Thread(target=self.serve_forever, name="kmip-loop", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)

    def serve_forever(self) -> None:
        """Run the event loop in this thread until :meth:`stop`."""
        loop = uvloop.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop accepting, close open connections, let requests in flight finish."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._listener.close()
        self.pool.shutdown(wait=True)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        accepting = loop.create_task(self._accept())
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            accepting.cancel()
            for session in list(self.open):
                session.abort()
            # answers of requests in flight come back to this loop: wait for them here
            await loop.run_in_executor(None, self.pool.shutdown, True)
            await asyncio.sleep(0)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        handshakes: set[asyncio.Task[None]] = set()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._listener)
            except OSError:  # out of descriptors and the like: let some close first
                await asyncio.sleep(0.05)
                continue
            if len(self.open) >= self.limits.max_connections:
                conn.close()  # over the cap: refuse at once, before any TLS work
                continue
            # requests and answers are single small writes: never wait for an ACK (Nagle)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = KmipSession(self)
            self.open.add(session)  # counted from the accept, handshake included
            task = loop.create_task(self._handshake(conn, session))
            handshakes.add(task)
            task.add_done_callback(handshakes.discard)

    async def _handshake(self, conn: socket.socket, session: KmipSession) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: session,
                conn,
                ssl=self.context,
                ssl_handshake_timeout=self.limits.handshake_timeout_s,
            )
        except GONE:
            self.open.discard(session)
            conn.close()
        except Exception:  # a bug must not take the listener down
            log.exception("KMIP handshake failed")
            self.open.discard(session)
            conn.close()

    def refusal(self, reason: ResultReason, text: str) -> bytes:
        """A KMIP error response outside any request (framing lost, unknown client)."""
        now = int(self.engine.kernel.clock.now())
        return encode(error_message((1, 0), now, reason, text))


def mutual_tls_context(
    chain_and_key: Callable[[ssl.SSLContext], None], ca_pem: bytes
) -> ssl.SSLContext:
    """A server context that requires a client certificate signed by the instance CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    chain_and_key(context)
    context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    context.verify_mode = ssl.CERT_REQUIRED
    # TLS 1.3 sends 2 session tickets per handshake by default, and issuing one costs about
    # a fifth of a handshake here; KMIP drivers (pymongo, libmongocrypt's, PyKMIP) open a
    # connection per request without resuming. One ticket keeps resumption for those that do
    # (the client certificate is looked up again on every connection, resumed or not).
    context.num_tickets = 1
    return context
