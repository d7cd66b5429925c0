"""Hot API calls answered inline (no ASGI) behave on the wire as the ASGI path does.

A real ``strongroom server`` over plain HTTP (so the bytes can be read as sent): pipelined
requests mixing the inline path (Decrypt) and uvicorn's (``/healthz``, CreateKey) are
answered in order; ``Connection: close`` closes after the answer; a bad signature is the
same error either way; a request with ``Expect: 100-continue`` or a chunked body still
works (it takes uvicorn's path); the request deadline still cuts a half-sent body.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from strongroom.testing.server import ServerInfo, run_server

from .wire_support import connect, sealed_blob, wire_request

DEADLINE = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    data = tmp_path_factory.mktemp("inline") / "data"
    with run_server(data, "--insecure-http", "--request-timeout", str(DEADLINE)) as info:
        yield info


@pytest.fixture(scope="module")
def blob(server: ServerInfo) -> str:
    return sealed_blob(server, b"inline")


def _responses(conn: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Read ``count`` whole responses (Content-Length framed) from ``conn``."""
    buffer = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while len(out) < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {
                name.lower(): value.strip()
                for name, _, value in (line.partition(":") for line in head[1:])
            }
            length = int(headers.get("content-length", "0"))
            if len(buffer) >= head_end + 4 + length:
                body = buffer[head_end + 4 : head_end + 4 + length]
                out.append((int(head[0].split()[1]), headers, body))
                buffer = buffer[head_end + 4 + length :]
                continue
        chunk = conn.recv(65536)
        if not chunk:
            break
        buffer += chunk
    return out


def test_pipelined_requests_on_both_paths_are_answered_in_order(
    server: ServerInfo, blob: str
) -> None:
    decrypt = wire_request(server, "Decrypt", {"CiphertextBlob": blob})
    create = wire_request(server, "CreateKey", {"Description": "pipelined"})
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server) as conn:
        conn.sendall(decrypt + health + decrypt + create + decrypt)
        answers = _responses(conn, 5)
    assert [status for status, _, _ in answers] == [200] * 5
    for index in (0, 2, 4):
        assert json.loads(answers[index][2])["Plaintext"] == base64.b64encode(b"inline").decode()
    assert json.loads(answers[1][2]) == {"status": "ok"}
    assert "KeyMetadata" in json.loads(answers[3][2])
    ids = [headers["x-amzn-requestid"] for _, headers, _ in answers]
    assert len(set(ids)) == 5 and all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)
    assert all("date" in headers for _, headers, _ in answers)


def test_connection_close_is_honoured(server: ServerInfo, blob: str) -> None:
    request = wire_request(server, "Decrypt", {"CiphertextBlob": blob})
    request = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    with connect(server) as conn:
        conn.sendall(request)
        answers = _responses(conn, 1)
        assert conn.recv(1) == b""  # closed by the server after the answer
    assert answers[0][0] == 200 and answers[0][1]["connection"] == "close"


def test_a_bad_signature_is_the_same_error_on_both_paths(server: ServerInfo, blob: str) -> None:
    inline = wire_request(server, "Decrypt", {"CiphertextBlob": blob})
    pooled = wire_request(server, "ListKeys", {})
    with connect(server) as conn:
        for request in (inline, pooled):
            conn.sendall(re.sub(rb"Signature=[0-9a-f]{8}", b"Signature=00000000", request))
        answers = _responses(conn, 2)
    assert [status for status, _, _ in answers] == [400, 400]
    assert [json.loads(body)["__type"] for _, _, body in answers] == [
        "InvalidSignatureException"
    ] * 2


def test_expect_continue_and_chunked_bodies_take_the_asgi_path(
    server: ServerInfo, blob: str
) -> None:
    request = wire_request(server, "Decrypt", {"CiphertextBlob": blob})
    head, _, body = request.partition(b"\r\n\r\n")
    expect = head + b"\r\nExpect: 100-continue\r\n\r\n"
    chunked = re.sub(rb"Content-Length: \d+", b"Transfer-Encoding: chunked", head)
    chunked += b"\r\n\r\n" + f"{len(body):x}".encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    with connect(server) as conn:
        conn.sendall(expect)
        assert conn.recv(100).startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(body + chunked)
        answers = _responses(conn, 2)
    assert [status for status, _, _ in answers] == [200, 200]


def test_a_half_sent_inline_body_is_cut_at_the_deadline(server: ServerInfo, blob: str) -> None:
    request = wire_request(server, "Decrypt", {"CiphertextBlob": blob})
    with connect(server) as conn:
        conn.sendall(request[:-10])  # the whole head, most of the body
        started = time.monotonic()
        assert conn.recv(1) == b""
        waited = time.monotonic() - started
    assert waited < DEADLINE + 5


def test_an_idle_connection_after_answers_is_closed_at_the_deadline(
    server: ServerInfo, blob: str
) -> None:
    """The next request's deadline counts from the last answer (the guard's sweep, no
    timer per request): a client that goes quiet after two answers is let go."""
    request = wire_request(server, "Decrypt", {"CiphertextBlob": blob})
    with connect(server) as conn:
        conn.sendall(request * 2)
        assert [status for status, _, _ in _responses(conn, 2)] == [200, 200]
        started = time.monotonic()
        assert conn.recv(1) == b""
        waited = time.monotonic() - started
    assert DEADLINE - 0.5 < waited < DEADLINE + 5


def test_many_pipelined_answers_to_a_slow_reader_come_back_whole_and_in_order(
    server: ServerInfo, blob: str
) -> None:
    """Answers pile up in the send buffer: the inline path yields to uvicorn's (which
    waits for the socket to drain), and every answer still comes back, in order."""
    decrypt = wire_request(server, "Decrypt", {"CiphertextBlob": blob})
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    batch = (decrypt * 9 + health) * 150
    with connect(server) as conn:
        sender = threading.Thread(target=conn.sendall, args=(batch,))
        sender.start()
        answers = _responses(conn, 1500)
        sender.join()
    assert len(answers) == 1500
    assert all(status == 200 for status, _, _ in answers)
    kinds = [b"Plaintext" in body for _, _, body in answers]
    assert kinds == ([True] * 9 + [False]) * 150
    assert len({headers["x-amzn-requestid"] for _, headers, _ in answers}) == 1500


def test_expect_is_read_as_uvicorn_reads_it(server: ServerInfo, blob: str) -> None:
    """Any case of ``Expect: 100-continue`` (trailing blanks too) gets its ``100 Continue``;
    another expectation is ignored, as uvicorn ignores it, and the request is answered."""
    request = wire_request(server, "Decrypt", {"CiphertextBlob": blob})
    head, _, body = request.partition(b"\r\n\r\n")
    with connect(server) as conn:
        conn.sendall(head + b"\r\nEXPECT: 100-Continue \t\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(body + head + b"\r\nExpect: something-else\r\n\r\n" + body)
        answers = _responses(conn, 2)
    assert [status for status, _, _ in answers] == [200, 200]
