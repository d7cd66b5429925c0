"""Clients with no credentials cannot hold the server's connections (slowloris, floods).

A real ``strongroom server`` with a short request deadline: half-sent request heads, idle
TLS connections and TCP connections that never start their handshake are cut off; a head
over the size limit is answered 431; and under 2,000 such connections (bounded, loopback
only) a signed Decrypt on a new connection still succeeds within a second.
"""

from __future__ import annotations

import resource
import selectors
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.testing.server import ServerInfo, client_for, run_server

DEADLINE = 2.0
HALF_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nX-A: "


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    data = tmp_path_factory.mktemp("slow") / "data"
    with run_server(
        data,
        "--request-timeout",
        str(DEADLINE),
        "--max-connections",
        "300",
        "--max-connections-per-client",
        "300",
    ) as info:
        yield info


def _address(info: ServerInfo) -> tuple[str, int]:
    host, port = info.endpoint_url.removeprefix("https://").rsplit(":", 1)
    return host, int(port)


def _tls(info: ServerInfo) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(info.ca_bundle))
    context.check_hostname = False
    return context


def _open_tls(info: ServerInfo, context: ssl.SSLContext, send: bytes) -> ssl.SSLSocket:
    raw = socket.create_connection(_address(info), timeout=10)
    conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
    if send:
        conn.sendall(send)
    return conn


def _closed_within(conns: list[socket.socket], limit: float) -> float:
    """Wait (on the sockets, no sleeping) until the server closed all; return how long."""
    start = time.monotonic()
    selector = selectors.DefaultSelector()
    for conn in conns:
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ)
    open_ = set(conns)
    while open_ and time.monotonic() - start < limit:
        for key, _ in selector.select(timeout=0.5):
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            conn = ready
            try:
                data = conn.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except (ssl.SSLError, ConnectionError, OSError):
                data = b""
            if not data:
                selector.unregister(conn)
                open_.discard(conn)
    selector.close()
    assert not open_, f"{len(open_)} of {len(conns)} connections still open after {limit} s"
    return time.monotonic() - start


def test_half_sent_heads_and_idle_connections_are_cut_off(server: ServerInfo) -> None:
    context = _tls(server)
    conns: list[socket.socket] = [_open_tls(server, context, HALF_HEAD) for _ in range(20)]
    conns += [_open_tls(server, context, b"") for _ in range(5)]  # TLS, then nothing
    conns += [socket.create_connection(_address(server)) for _ in range(5)]  # no handshake
    try:
        took = _closed_within(conns, limit=DEADLINE + 8)
    finally:
        for conn in conns:
            conn.close()
    assert took < DEADLINE + 8


def test_a_dripping_client_is_cut_off_at_the_deadline(server: ServerInfo) -> None:
    conn = _open_tls(server, _tls(server), HALF_HEAD)
    start = time.monotonic()
    try:
        conn.settimeout(0.2)
        # One header byte every 0.2 s (the socket timeout paces it): each byte resets
        # nothing, the deadline counts from the start of the request.
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            while time.monotonic() - start < DEADLINE + 8:
                conn.sendall(b"a")
                try:
                    if conn.recv(1) == b"":
                        raise ConnectionResetError("closed by the server")
                except TimeoutError:
                    continue
    finally:
        conn.close()
    assert time.monotonic() - start < DEADLINE + 8


def test_an_oversized_head_is_refused(server: ServerInfo) -> None:
    conn = _open_tls(server, _tls(server), b"")
    try:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n")
        conn.settimeout(10)
        answer = conn.recv(200)
    finally:
        conn.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_signed_decrypt_gets_through_2000_slow_connections(
    server: ServerInfo, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2600:
        if hard != resource.RLIM_INFINITY and hard < 2600:
            pytest.skip(f"needs 2,600 open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2600, hard))
    kms = client_for(server, connect_timeout=5, read_timeout=5)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"still served")["CiphertextBlob"]
    context = _tls(server)
    slow: list[socket.socket] = []
    try:
        # 1,500 TCP connections that never start TLS, 500 TLS ones with half a head: more
        # than the worker's cap of 300, so the newest push the longest-waiting out.
        slow += [socket.create_connection(_address(server)) for _ in range(1500)]
        slow += [_open_tls(server, context, HALF_HEAD) for _ in range(500)]
        fresh = client_for(server, connect_timeout=5, read_timeout=5)
        start = time.monotonic()
        answer = fresh.decrypt(CiphertextBlob=blob)
        took = time.monotonic() - start
    finally:
        for conn in slow:
            conn.close()
    assert answer["Plaintext"] == b"still served"
    assert took < 1.0, f"Decrypt took {took:.2f} s under 2,000 slow connections"
