"""The KMS client's HTTP/1.1 transport against the standard library's HTTP server: every
way a response can be framed, keep-alive, a server that closes idle connections."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from strongroom.awsjson.http11 import Http11, HttpError

BODY = b'{"Plaintext":"AAAA"}' * 50


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, bytes, str]] = []  # noqa: RUF012 - shared by the test on purpose

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Handler.seen.append((self.path, body, self.headers.get("X-Amz-Target", "")))
        mode = self.path.strip("/")
        if mode == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(BODY), 300):
                part = BODY[start : start + 300]
                self.wfile.write(f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\nTrailer: x\r\n\r\n")
        elif mode == "eof":
            self.send_response(400)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        elif mode == "huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = mode == "once"

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (the "huge" case) is expected here


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.seen.clear()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def client(server: ThreadingHTTPServer) -> Http11:
    return Http11("127.0.0.1", server.server_address[1], tls=False, ca_bundle=None, timeout=10)


def test_every_framing(server: ThreadingHTTPServer) -> None:
    http = client(server)
    headers = {"Host": "x", "X-Amz-Target": "TrentService.Decrypt"}
    try:
        for path, status in (("/", 200), ("/chunked", 200), ("/", 200), ("/eof", 400), ("/", 200)):
            assert http.post(path, headers, b'{"a":1}', 1 << 20) == (status, BODY)
        assert [s[:2] for s in Handler.seen] == [
            ("/", b'{"a":1}'),
            ("/chunked", b'{"a":1}'),
            ("/", b'{"a":1}'),
            ("/eof", b'{"a":1}'),
            ("/", b'{"a":1}'),
        ]
        with pytest.raises(HttpError, match="too large"):
            http.post("/huge", headers, b"", 1 << 20)
        with pytest.raises(HttpError, match="too large"):
            http.post("/chunked", headers, b"", 100)
    finally:
        http.close()


def test_a_connection_the_server_closed_is_replaced(server: ThreadingHTTPServer) -> None:
    http = client(server)
    try:
        assert http.post("/once", {"Host": "x"}, b"1", 1 << 20)[0] == 200
        # the server closed after answering, without saying so: the next post reconnects
        assert http.post("/", {"Host": "x"}, b"2", 1 << 20)[0] == 200
        assert [s[1] for s in Handler.seen] == [b"1", b"2"]
    finally:
        http.close()


def test_nothing_listening_is_an_error() -> None:
    http = Http11("127.0.0.1", 9, tls=False, ca_bundle=None, timeout=5)
    with pytest.raises(OSError):
        http.post("/", {"Host": "x"}, b"", 100)
