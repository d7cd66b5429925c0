"""The connection guard's bookkeeping, in process: admission, eviction order, caps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from strongroom.server.guard import RESERVED_FILES, ConnectionGuard, ConnectionLimits


@dataclass(eq=False)
class Conn:
    name: str
    evicted: list[str] = field(default_factory=list)

    def evict(self) -> None:
        self.evicted.append(self.name)

    def timed_out(self) -> None:
        self.evicted.append("deadline")

    def keepalive_expired(self) -> None:
        self.evicted.append("keep-alive")


def test_a_full_worker_evicts_the_connection_that_waited_longest() -> None:
    guard = ConnectionGuard(ConnectionLimits(max_connections=3, max_per_client=10))
    a, b, c, d = (Conn(n) for n in "abcd")
    for conn in (a, b, c):
        assert guard.admit(conn, "10.0.0.1")
    guard.waiting(a)  # a finished a request and waits again: now the newest waiter
    assert guard.admit(d, "10.0.0.2")
    assert b.evicted == ["b"] and not a.evicted and not c.evicted
    assert len(guard) == 3 and guard.evicted == 1


def test_a_connection_serving_a_request_is_never_evicted() -> None:
    guard = ConnectionGuard(ConnectionLimits(max_connections=2, max_per_client=10))
    a, b, c = Conn("a"), Conn("b"), Conn("c")
    assert guard.admit(a, "h") and guard.admit(b, "h")
    guard.busy(a)
    guard.busy(b)
    assert not guard.admit(c, "h")
    assert guard.refused == 1 and not a.evicted and not b.evicted
    guard.waiting(b)
    assert guard.admit(c, "h")
    assert b.evicted == ["b"]


def test_the_per_client_cap_evicts_only_that_clients_connections() -> None:
    guard = ConnectionGuard(ConnectionLimits(max_connections=100, max_per_client=2))
    mine = [Conn("m1"), Conn("m2")]
    other = Conn("o1")
    assert guard.admit(other, "10.0.0.9")
    for conn in mine:
        assert guard.admit(conn, "10.0.0.1")
    third = Conn("m3")
    assert guard.admit(third, "10.0.0.1")
    assert mine[0].evicted == ["m1"] and not other.evicted


def test_release_frees_the_slot() -> None:
    guard = ConnectionGuard(ConnectionLimits(max_connections=1, max_per_client=1))
    a, b = Conn("a"), Conn("b")
    assert guard.admit(a, "h")
    guard.busy(a)
    guard.release(a)
    assert guard.admit(b, "h") and not a.evicted


def test_the_cap_follows_the_file_limit() -> None:
    guard = ConnectionGuard(ConnectionLimits(max_connections=8192), file_limit=1024)
    assert guard.max_connections == 1024 - RESERVED_FILES


def test_the_sweep_closes_connections_past_their_deadline_in_waiting_order() -> None:
    guard = ConnectionGuard(ConnectionLimits(request_timeout=10.0, keepalive_seconds=5))
    a, b, c = Conn("a"), Conn("b"), Conn("c")
    assert guard.admit(a, "h", now=0.0) and guard.admit(b, "h", now=1.0)
    assert guard.admit(c, "h", now=2.0)
    guard.busy(c)  # serving a request: no deadline
    guard.sweep(4.9)
    assert a.evicted == b.evicted == []
    guard.sweep(5.5)  # past a's keep-alive limit: the connection decides (idle or not)
    assert a.evicted == ["keep-alive"] and b.evicted == []
    guard.waiting(b, now=5.5)  # b answered a request and waits again, newest last
    guard.sweep(10.0)
    assert a.evicted == ["keep-alive", "deadline"] and b.evicted == [] and c.evicted == []
    assert len(guard) == 2 and guard.expired == 1
    guard.sweep(15.5)
    assert b.evicted == ["deadline"] and c.evicted == []


def test_the_sweep_period_follows_the_shortest_limit() -> None:
    assert ConnectionGuard(ConnectionLimits()).sweep_seconds == 0.25
    short = ConnectionGuard(ConnectionLimits(request_timeout=0.2, keepalive_seconds=5))
    assert short.sweep_seconds == 0.05


def test_the_sweep_runs_on_the_loop_of_the_connections() -> None:
    guard = ConnectionGuard(ConnectionLimits(request_timeout=0.2, keepalive_seconds=5))
    for _ in range(2):  # a second loop (the first one closed) gets its own sweeps
        conn = Conn("a")

        async def wait_for_the_deadline(conn: Conn = conn) -> None:
            loop = asyncio.get_running_loop()
            assert guard.admit(conn, "h", loop.time())
            guard.watch(loop)
            for _ in range(100):
                if conn.evicted:
                    return
                await asyncio.sleep(0.05)

        asyncio.run(wait_for_the_deadline())
        assert conn.evicted == ["deadline"] and len(guard) == 0
