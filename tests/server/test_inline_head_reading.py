"""The inline path reads a request head as the API reads it, however the bytes arrive.

The server's protocol reads headers into text as the parser hands them over (no second
pass). These tests feed the real protocol class and parser a request split at every
byte, pipelined behind others, with repeated and blank-padded headers, and check the head
the app is handed is the one the API's own reader (``head_of``) makes of uvicorn's
headers; then over the wire, a request sent a byte at a time, a chunked body with a
trailer (uvicorn's path) followed by an inline request, and a header name that is not a
token (refused, as before).
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from strongroom.api.request import RequestHead, head_from, head_of
from strongroom.server.guard import ConnectionGuard, ConnectionLimits
from strongroom.server.http_protocol import step_flush
from strongroom.server.inline_protocol import InlineHttpProtocol
from strongroom.testing.server import ServerInfo, run_server

from .wire_support import connect, sealed_blob, wire_request

BODY = b'{"CiphertextBlob": "AAAA"}'
HEAD = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.Decrypt\r\n"
    b"Content-Type: application/x-amz-json-1.1; charset=utf-8 \t\r\n"
    b"X-Amz-Date: 20261206T080000Z\r\n"
    b"X-Extra: one\r\nx-extra: two  \r\nAuthorization: AWS4-HMAC-SHA256 Credential=x\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
)
# what uvicorn made of these headers: lowercase names, trailing blanks dropped
UVICORN = [
    (name.lower().strip(), value.rstrip(b" \t").lstrip(b" "))
    for name, _, value in (line.partition(b":") for line in HEAD.split(b"\r\n")[1:-2])
]


class _Recorder:
    """``KmsApi``'s inline methods, recording each head and answering a fixed body."""

    def __init__(self) -> None:
        self.heads: list[tuple[RequestHead, bytes, bytes]] = []

    def inline_head(
        self, headers: list[tuple[str, str]], by_name: dict[str, list[str]]
    ) -> RequestHead:
        return head_from(headers, by_name)

    def serve_head(
        self, head: RequestHead, body: bytes, url: bytes, client: str
    ) -> tuple[int, bytes, bytes, str]:
        self.heads.append((head, body, url))
        return 200, b"{}", b"application/x-amz-json-1.1", "00000000-0000-0000-0000-000000000000"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """uvicorn's path: an empty answer (not recorded)."""
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class _Transport:
    def __init__(self) -> None:
        self.out: collections.deque[bytes] = collections.deque()
        self.write = self.out.append
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


@pytest.fixture
def connection() -> Iterator[tuple[InlineHttpProtocol, _Transport, _Recorder]]:
    loop = asyncio.new_event_loop()
    app = _Recorder()
    cls = InlineHttpProtocol.bound_to(ConnectionGuard(ConnectionLimits()), app)  # type: ignore[arg-type]
    config = uvicorn.Config(app, loop="none", http=cls, lifespan="off", log_config=None)
    config.load()
    protocol = cls(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    yield protocol, transport, app
    pending = asyncio.all_tasks(loop)  # requests that took uvicorn's path
    if pending:
        loop.run_until_complete(asyncio.gather(*pending))
    protocol.connection_lost(None)
    loop.close()


def _expected() -> RequestHead:
    return head_of(UVICORN)


def _step_ends(protocol: InlineHttpProtocol) -> None:
    """The end of the event loop step: held answers go out (the loop does not run here)."""
    step_flush(protocol.loop).flush()


def test_the_head_is_read_as_head_of_reads_uvicorns_headers(
    connection: tuple[InlineHttpProtocol, _Transport, _Recorder],
) -> None:
    protocol, transport, app = connection
    protocol.data_received(HEAD + BODY)
    [(head, body, url)] = app.heads
    assert head == _expected() and body == BODY and url == b"/"
    assert head.by_name["x-extra"] == ["one", "two"]
    assert head.content_type == "application/x-amz-json-1.1"
    assert not transport.out  # held to the end of the loop step
    _step_ends(protocol)
    assert transport.out[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_request_split_at_every_byte_reads_the_same(
    connection: tuple[InlineHttpProtocol, _Transport, _Recorder],
) -> None:
    protocol, transport, app = connection
    request = HEAD + BODY
    for cut in range(1, len(request)):
        protocol.data_received(request[:cut])
        protocol.data_received(request[cut:])
    protocol.data_received(request[:1])  # and a byte at a time
    for index in range(1, len(request)):
        protocol.data_received(request[index : index + 1])
    assert len(app.heads) == len(request)
    assert all(seen == (_expected(), BODY, b"/") for seen in app.heads)
    _step_ends(protocol)
    assert len(transport.out) == len(request) and not transport.closed


def test_pipelined_requests_each_get_their_own_head(
    connection: tuple[InlineHttpProtocol, _Transport, _Recorder],
) -> None:
    protocol, transport, app = connection
    other = HEAD.replace(b"X-Extra: one\r\n", b"").replace(b"POST / ", b"POST /?a=b ")
    protocol.data_received((HEAD + BODY + other + BODY) * 3)
    assert [url for _, _, url in app.heads] == [b"/", b"/?a=b"] * 3
    assert [head.by_name["x-extra"] for head, _, _ in app.heads] == [["one", "two"], ["two"]] * 3
    _step_ends(protocol)
    assert len(transport.out) == 6


@pytest.mark.parametrize("version", [b"1.0", b"1.1", b"2.0"])
@pytest.mark.parametrize("header", [b"", b"Connection: keep-alive\r\n"])
def test_only_http_11_takes_the_inline_path(
    connection: tuple[InlineHttpProtocol, _Transport, _Recorder], version: bytes, header: bytes
) -> None:
    protocol, _, app = connection
    head = HEAD.replace(b"HTTP/1.1", b"HTTP/" + version)
    protocol.data_received(head.replace(b"\r\n\r\n", b"\r\n" + header + b"\r\n") + BODY)
    assert len(app.heads) == (1 if version == b"1.1" else 0)


# -- over the wire -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    data = tmp_path_factory.mktemp("heads") / "data"
    with run_server(data, "--insecure-http") as info:
        yield info


@pytest.fixture(scope="module")
def decrypt(server: ServerInfo) -> bytes:
    """A signed Decrypt request as bytes on the wire."""
    body: dict[str, object] = {"CiphertextBlob": sealed_blob(server, b"heads")}
    return wire_request(server, "Decrypt", body)


def _connect(info: ServerInfo) -> socket.socket:
    conn = connect(info)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _answers(conn: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """``count`` Content-Length framed responses: status and body."""
    buffer = b""
    out: list[tuple[int, bytes]] = []
    while len(out) < count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = buffer[:end].lower()
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(buffer) >= end + 4 + length:
                out.append((int(head.split()[1]), buffer[end + 4 : end + 4 + length]))
                buffer = buffer[end + 4 + length :]
                continue
        chunk = conn.recv(65536)
        assert chunk, "closed before the answers were in"
        buffer += chunk
    return out


def test_a_request_sent_a_byte_at_a_time_is_answered(server: ServerInfo, decrypt: bytes) -> None:
    with _connect(server) as conn:
        for index in range(len(decrypt)):
            conn.send(decrypt[index : index + 1])
        conn.sendall(decrypt)
        answers = _answers(conn, 2)
    assert [status for status, _ in answers] == [200, 200]
    assert all(b'"Plaintext"' in body for _, body in answers)


def test_a_chunked_body_with_a_trailer_then_an_inline_request(
    server: ServerInfo, decrypt: bytes
) -> None:
    head, _, body = decrypt.partition(b"\r\n\r\n")
    chunked = head.replace(b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked")
    chunked += b"\r\n\r\n%x\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n" % (len(body), body)
    with _connect(server) as conn:
        conn.sendall(chunked + decrypt)
        answers = _answers(conn, 2)
    assert [status for status, _ in answers] == [200, 200]


def test_a_header_name_that_is_not_a_token_is_refused(server: ServerInfo, decrypt: bytes) -> None:
    bad = decrypt.replace(b"\r\n", b"\r\nX-\xe9t\xe9: 1\r\n", 1)
    with _connect(server) as conn:
        conn.sendall(bad)
        answers = _answers(conn, 1)
        assert conn.recv(1) == b""
    assert answers[0][0] == 400
