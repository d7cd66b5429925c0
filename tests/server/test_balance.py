"""Workers sharing one listening socket take even shares of its connections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from strongroom.server.balance import ABSENT, BalancedListener, ConnectionShares
from strongroom.testing.server import ServerProcess

WAIT_SECONDS = 20.0


def test_a_worker_accepts_only_while_no_serving_peer_has_fewer() -> None:
    counts = [ABSENT, ABSENT, ABSENT]
    first, second = ConnectionShares(counts, 0), ConnectionShares(counts, 1)
    first.publish(0)
    assert first.my_turn()  # the others are not serving
    second.publish(0)
    assert first.my_turn() and second.my_turn()
    first.publish(1)
    assert not first.my_turn() and second.my_turn()
    second.publish(1)
    assert first.my_turn() and second.my_turn()
    first.publish(3)
    second.leave()  # a worker that stops serving is nobody's reason to wait
    assert first.my_turn()


changed = threading.Condition()


class _Worker:
    """One event loop in a thread with a :class:`BalancedListener` on the shared socket."""

    def __init__(self, sock: socket.socket, counts: list[int], index: int, defer: float) -> None:
        self.loop = uvloop.new_event_loop()
        self.open: list[asyncio.Transport] = []
        self.changed = changed
        worker = self

        class Keep(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                worker.open.append(transport)  # type: ignore[arg-type]
                with worker.changed:
                    worker.changed.notify_all()

        self.listener = BalancedListener(
            self.loop,
            sock,
            Keep,
            ConnectionShares(counts, index),
            lambda: len(self.open),
            defer_seconds=defer,
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        """Start the loop and return once the listener serves (its count is published).

        Connecting before a peer serves would hand everything to the one that does, which
        is the policy (a worker that is not serving is nobody's reason to wait).
        """
        started = threading.Event()

        def start_listener() -> None:
            self.listener.start()
            started.set()

        self.thread.start()
        self.loop.call_soon_threadsafe(start_listener)
        assert started.wait(WAIT_SECONDS)

    def stop(self) -> None:
        def close() -> None:
            self.listener.close()
            for transport in self.open:
                transport.abort()
            self.loop.stop()

        self.loop.call_soon_threadsafe(close)
        self.thread.join(WAIT_SECONDS)
        self.loop.close()


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield sock
    sock.close()


def _connect(sock: socket.socket, count: int) -> list[socket.socket]:
    return [socket.create_connection(sock.getsockname()) for _ in range(count)]


def _wait_for(workers: list[_Worker], total: int) -> None:
    with changed:
        changed.wait_for(lambda: sum(len(w.open) for w in workers) >= total, WAIT_SECONDS)
    assert sum(len(w.open) for w in workers) == total


def test_connections_opened_together_are_split_evenly(listening: socket.socket) -> None:
    counts = [ABSENT, ABSENT]
    # a peer never "takes too long" here: the split depends on the policy, not on timing
    workers = [_Worker(listening, counts, index, defer=WAIT_SECONDS) for index in range(2)]
    for worker in workers:
        worker.start()
    clients: list[Any] = []
    try:
        for _ in range(4):  # bursts of connections, as wrk opens them
            clients += _connect(listening, 4)
        _wait_for(workers, 16)
        assert [len(w.open) for w in workers] == [8, 8]
    finally:
        for client in clients:
            client.close()
        for worker in workers:
            worker.stop()


def test_a_peer_that_never_accepts_only_delays_connections(listening: socket.socket) -> None:
    counts = [ABSENT, 0]  # worker 1 says it serves, with no connections, and is stuck
    worker = _Worker(listening, counts, 0, defer=0.02)
    worker.start()
    clients: list[Any] = []
    try:
        clients += _connect(listening, 16)
        _wait_for([worker], 16)
        assert worker.listener.deferred > 0  # it did leave them to its peer first
        assert len(worker.open) == 16
    finally:
        for client in clients:
            client.close()
        worker.stop()
    assert counts == [ABSENT, 0]  # a closed listener leaves the share to the others


def _established_on(port: int) -> set[int]:
    """Inodes of the server ends of established TCP connections on ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED
                    inodes.add(int(fields[9]))
    return inodes


def _sockets_of(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def test_a_server_with_two_workers_splits_keep_alive_connections(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--workers", "2").start()
    clients: list[ssl.SSLSocket] = []
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while server.output().count("serving (TLS)") < 2:  # each worker, once it accepts
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        assert server.process is not None
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        workers = [
            int(pid)
            for pid in children.read_text().split()
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(workers) == 2
        context = server.ssl_context()
        assert context is not None
        for _ in range(16):  # handshakes done: each connection sits in a worker
            raw = socket.create_connection(("127.0.0.1", server.port))
            clients.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
        connections = _established_on(server.port)
        split = sorted(len(_sockets_of(pid) & connections) for pid in workers)
        assert sum(split) == 16, split
        # 8 and 8 unless a worker was kept off the CPU for longer than the other waited
        # for it (a loaded machine); left to the kernel it was 15 and 1 in one run
        assert max(split) - min(split) <= 2, split
    finally:
        for client in clients:
            client.close()
        server.close()


def _closed_by_server(conn: socket.socket, deadline: float) -> bool:
    """Whether the server closes ``conn`` before ``deadline`` (monotonic); reads block."""
    while (left := deadline - time.monotonic()) > 0:
        conn.settimeout(left)
        try:
            if not conn.recv(4096):
                return True
        except TimeoutError:
            return False
        except (ssl.SSLError, OSError):
            return True
    return False


def test_balanced_workers_keep_the_handshake_and_request_deadlines(tmp_path: Path) -> None:
    # The balanced accept path hands connections to the loop itself: a TCP connection
    # that never starts its TLS handshake, and a TLS one that never sends a request,
    # are still cut off (with a request timeout of 1 s: the handshake deadline is 1 s)
    server = ServerProcess(tmp_path / "data", "--workers", "2", "--request-timeout", "1")
    server.start()
    conns: list[socket.socket] = []
    try:
        context = server.ssl_context()
        assert context is not None
        for _ in range(4):
            conns.append(socket.create_connection(("127.0.0.1", server.port)))
            raw = socket.create_connection(("127.0.0.1", server.port))
            conns.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
        deadline = time.monotonic() + 10
        assert all(_closed_by_server(conn, deadline) for conn in conns)
        status, _ = server.get("/healthz")  # and new connections are still served
        assert status == 200
    finally:
        for conn in conns:
            conn.close()
        server.close()
