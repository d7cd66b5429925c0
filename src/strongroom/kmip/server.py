"""The KMIP listener: TLS with required client certificates, one thread per connection.

Hardening, as the KMS API has it: a cap on open connections (the next one is closed at
once), a handshake timeout, an idle timeout between requests and a read timeout inside
one, a message size cap read from the 8-byte header before the body is read, and every
malformed message answered with a KMIP error response (the connection is closed when the
framing itself is lost). A certificate the CA signed but that maps to no client gets an
Authentication Not Successful response. Nothing a client sends can raise out of a
connection thread.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.kmip.context import KmipClient
from strongroom.kmip.engine import KmipEngine
from strongroom.kmip.messages import error_message
from strongroom.kmip.tags import ResultReason
from strongroom.kmip.ttlv import HEADER_BYTES, TtlvError, encode, message_length

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


class _Closed(Exception):
    """The peer went away or timed out: end the connection quietly."""


def _read_exact(sock: ssl.SSLSocket, n: int) -> bytes:
    parts = []
    while n:
        chunk = sock.recv(min(n, 1 << 16))
        if not chunk:
            raise _Closed
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


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
        self._resolve = resolve
        self._context = context
        self.limits = limits or Limits()
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._listener = socket.create_server((host, port), backlog=128, reuse_port=False)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        return int(self._listener.getsockname()[1])

    def start(self) -> None:
        """Accept connections on a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="kmip-accept", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Accept connections until :meth:`stop`."""
        self._listener.settimeout(0.5)
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            if not self._slots.acquire(blocking=False):
                conn.close()  # over the cap: refuse at once rather than queue
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def stop(self) -> None:
        """Stop accepting (open connections end at their next timeout or close)."""
        self._stopping.set()
        self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _serve(self, conn: socket.socket) -> None:
        try:
            # requests and answers are single small writes: never wait for an ACK (Nagle)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(self.limits.handshake_timeout_s)
            with self._context.wrap_socket(conn, server_side=True) as tls:
                self._session(tls)
        except (_Closed, OSError, ssl.SSLError):
            pass
        except Exception:  # a bug must not take the listener down
            log.exception("KMIP connection failed")
        finally:
            conn.close()
            self._slots.release()

    def _session(self, tls: ssl.SSLSocket) -> None:
        der = tls.getpeercert(binary_form=True)
        client = self._resolve(der) if der else None
        while True:
            tls.settimeout(self.limits.idle_timeout_s)
            header = _read_exact(tls, HEADER_BYTES)
            tls.settimeout(self.limits.read_timeout_s)
            try:
                total = message_length(header)
            except TtlvError as exc:
                self._refuse(tls, ResultReason.INVALID_MESSAGE, str(exc))
                return
            if total > self.limits.max_message_bytes:
                self._refuse(tls, ResultReason.INVALID_MESSAGE, "message too large")
                return
            body = header + _read_exact(tls, total - HEADER_BYTES)
            if client is None:
                self._refuse(
                    tls,
                    ResultReason.AUTHENTICATION_NOT_SUCCESSFUL,
                    "this certificate is not mapped to a KMIP client",
                )
                return
            tls.sendall(self.engine.handle(body, client))

    def _refuse(self, tls: ssl.SSLSocket, reason: ResultReason, message: str) -> None:
        now = int(self.engine.kernel.clock.now())
        tls.sendall(encode(error_message((1, 0), now, reason, message)))


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
    return context
