"""One HTTP/1.1 POST at a time over a kept-alive (TLS) socket: the KMS client's transport.

``http.client`` would do, but importing it (and the ``email`` package it parses headers
with) costs the fast unlock path more CPU than the request itself. This is the part of
HTTP/1.1 (RFC 9112) a JSON API call needs: a request with ``Content-Length``; a response
framed by ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the
connection; keep-alive unless the server closes; a request on a reused connection that
the server had already closed is sent once more on a new one. Every length is bounded.
"""

from __future__ import annotations

import socket
import ssl

MAX_LINE = 16 * 1024
MAX_HEADERS = 100


class HttpError(OSError):
    """The response is not HTTP/1.x as this client reads it, or the connection broke."""


class Http11:
    """A connection to ``host:port``, opened on first use.

    With ``tls`` it is verified against ``ca_bundle`` or the system's trust store.
    """

    def __init__(
        self, host: str, port: int, *, tls: bool, ca_bundle: str | None, timeout: float
    ) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._ca_bundle, self._timeout = ca_bundle, timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        if self._tls:
            context = ssl.create_default_context(cafile=self._ca_bundle)
            try:
                sock = context.wrap_socket(sock, server_hostname=self._host)
            except BaseException:
                sock.close()
                raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buffer = sock, b""
        return sock

    def post(
        self, path: str, headers: dict[str, str], body: bytes, max_body: int
    ) -> tuple[int, bytes]:
        """Send ``POST path`` with ``headers`` and ``body``; the status and the body."""
        lines = [f"POST {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (0, 1):
            reused = self._sock is not None
            sock = self._sock or self._open()
            try:
                sock.sendall(request)
                status, data, keep = self._response(max_body)
            except (OSError, ValueError) as exc:
                self.close()
                if reused and attempt == 0 and isinstance(exc, _NothingReceived):
                    continue  # the server closed an idle kept-alive connection
                raise HttpError(str(exc) or type(exc).__name__) from None
            if not keep:
                self.close()
            return status, data
        raise HttpError("no response")  # pragma: no cover - the loop returns or raises

    def _fill(self) -> bool:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        self._buffer += chunk
        return bool(chunk)

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise HttpError("response line too long")
            if not self._fill():
                raise HttpError("connection closed mid-response")
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise HttpError("connection closed mid-body")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _response(self, max_body: int) -> tuple[int, bytes, bool]:
        if not self._buffer and not self._fill():
            raise _NothingReceived("connection closed before a response")
        version, _, rest = self._line().partition(b" ")
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or not rest[:3].isdigit():
            raise HttpError("not an HTTP/1.x response")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise HttpError("too many response headers")
        keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, self._chunked(max_body), keep
        if "content-length" in headers:
            length = int(headers["content-length"])
            if not 0 <= length <= max_body:
                raise HttpError("response body too large")
            return status, self._exactly(length), keep
        while self._fill():  # framed by the end of the connection
            if len(self._buffer) > max_body:
                raise HttpError("response body too large")
        data, self._buffer = self._buffer, b""
        return status, data, False

    def _chunked(self, max_body: int) -> bytes:
        body = b""
        while True:
            size = int(self._line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._line():  # trailers
                    pass
                return body
            if len(body) + size > max_body:
                raise HttpError("response body too large")
            body += self._exactly(size)
            if self._exactly(2) != b"\r\n":
                raise HttpError("malformed chunk")

    def close(self) -> None:
        """Close the connection (the next post opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock, self._buffer = None, b""


class _NothingReceived(HttpError):
    """The connection ended before any byte of a response (stale keep-alive)."""
