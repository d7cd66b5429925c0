"""Running sidecar and egress proxies in tests: an event loop thread and tiny servers.

- :class:`LoopThread`: a uvloop event loop in a daemon thread; :meth:`LoopThread.call`
  runs a coroutine on it from the test's thread and returns its result.
- :class:`HttpResponder`: a minimal HTTP/1.1 server (asyncio protocol, keep-alive,
  ``Connection: close`` honoured) answering every request with a small fixed body; fast
  enough to measure a proxy with ``wrk``. Run it alone with
  ``python -m strongroom.testing.mesh_proxy PORT``.
- :func:`http_get`: one GET over a fresh or given socket, returning status and body.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

T = TypeVar("T")

BODY = b"hello from upstream\n"
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
_CLOSE_RESPONSE = _RESPONSE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)


class LoopThread:
    """A uvloop event loop running in its own daemon thread."""

    def __init__(self) -> None:
        import uvloop

        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.loop.run_forever()
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop, cancel what still runs on it, close it and join the thread."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Http(asyncio.Protocol):
    def __init__(self, owner: HttpResponder) -> None:
        self._owner = owner
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._owner.connections += 1

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buffer = buffer[:end], buffer[end + 4 :]
            self._owner.requests += 1
            assert self._transport is not None
            if b"\r\nconnection: close" in head.lower():
                self._transport.write(_CLOSE_RESPONSE)
                self._transport.close()
                return
            self._transport.write(_RESPONSE)
        self._buffer = buffer


class HttpResponder:
    """Answers ``200 OK`` + :data:`BODY` to every request (start it on a running loop)."""

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> int:
        """Listen on ``host:port`` (0: any free port; HTTPS with ``ssl_context``); the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Http(self), host, port, backlog=1024, ssl=ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length body; ``(0, b"")`` on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, b""
        body += chunk
    return int(head.split(b" ", 2)[1]), body[:length]


def http_get(
    port: int, sock: socket.socket | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """GET / on ``127.0.0.1:port`` (or over ``sock``); ``(0, b"")`` if the connection ended."""
    own = sock is None
    if sock is None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        return read_response(sock)
    except (ConnectionError, TimeoutError):
        return 0, b""
    finally:
        if own:
            sock.close()


def _main() -> None:
    import uvloop

    async def serve() -> None:
        responder = HttpResponder()
        await responder.start(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
        print(responder.port, flush=True)
        await asyncio.Event().wait()

    uvloop.run(serve())


if __name__ == "__main__":
    _main()
