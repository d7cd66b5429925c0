"""Answers held to the end of the event loop step go out then, in order, and never late.

The inline path hands each whole answer to :meth:`CoalescingTransport.hold`; the loop's
:class:`StepFlush` sends every connection's held answer once the step's callbacks are done,
with one callback for all of them. A write, close or second answer on the same connection
sends what it holds first; an abort drops it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.server.http_protocol import CoalescingTransport, step_flush


class _Wire:
    """A transport that records what is written to it, in one list for all connections."""

    def __init__(self, name: str, log: list[tuple[str, bytes]]) -> None:
        self.name, self.log, self.closed = name, log, False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.log.append((self.name, data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.log.append((self.name, b"<close>"))
        self.closed = True

    def abort(self) -> None:
        self.log.append((self.name, b"<abort>"))
        self.closed = True


class _CountingLoop(asyncio.SelectorEventLoop):
    """Counts ``call_soon`` calls (one per step is the point of :class:`StepFlush`)."""

    calls = 0

    def call_soon(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls += 1
        return super().call_soon(*args, **kwargs)


@pytest.fixture
def loop() -> Iterator[_CountingLoop]:
    made = _CountingLoop()
    yield made
    made.close()


def _step(loop: asyncio.AbstractEventLoop) -> None:
    """Run the loop for one step."""
    loop.run_until_complete(asyncio.sleep(0))


def test_held_answers_go_out_at_the_end_of_the_step_in_order(loop: _CountingLoop) -> None:
    log: list[tuple[str, bytes]] = []
    step = step_flush(loop)
    first = CoalescingTransport(_Wire("a", log), step)
    second = CoalescingTransport(_Wire("b", log), step)
    first.hold(b"HTTP/1.1 200 OK\r\n\r\none")
    second.hold(b"HTTP/1.1 200 OK\r\n\r\ntwo")
    assert log == [] and loop.calls == 1  # one callback for the step, not one each
    _step(loop)
    assert log == [("a", b"HTTP/1.1 200 OK\r\n\r\none"), ("b", b"HTTP/1.1 200 OK\r\n\r\ntwo")]
    assert first.held is None and second.held is None and not first.queued


def test_what_a_connection_holds_goes_before_its_next_write(loop: _CountingLoop) -> None:
    log: list[tuple[str, bytes]] = []
    held = CoalescingTransport(_Wire("a", log), step_flush(loop))
    held.hold(b"answer 1")
    held.hold(b"answer 2")  # a second answer in the same step: the first goes now
    assert log == [("a", b"answer 1")]
    held.write(b"body")  # uvicorn's path writes: what is held goes with it, first
    assert log == [("a", b"answer 1"), ("a", b"answer 2body")]
    held.hold(b"answer 3")
    held.close()
    assert log[-2:] == [("a", b"answer 3"), ("a", b"<close>")]
    _step(loop)  # nothing left for the step's end
    assert log[-1] == ("a", b"<close>")


def test_an_abort_drops_what_is_held(loop: _CountingLoop) -> None:
    log: list[tuple[str, bytes]] = []
    held = CoalescingTransport(_Wire("a", log), step_flush(loop))
    held.hold(b"answer")
    held.abort()
    _step(loop)
    assert log == [("a", b"<abort>")]


def test_a_response_head_waits_for_its_body_or_the_step(loop: _CountingLoop) -> None:
    log: list[tuple[str, bytes]] = []
    held = CoalescingTransport(_Wire("a", log), step_flush(loop))
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    held.write(b"body")
    held.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # no body follows this one
    assert log == [("a", b"HTTP/1.1 200 OK\r\n\r\nbody")]
    _step(loop)
    assert log[-1] == ("a", b"HTTP/1.1 204 No Content\r\n\r\n")


def test_each_loop_has_its_own_step(loop: _CountingLoop) -> None:
    other = asyncio.new_event_loop()
    try:
        assert step_flush(loop) is step_flush(loop)
        assert step_flush(other) is not step_flush(loop)
    finally:
        other.close()


def test_a_lagging_flusher_is_asked_after_each_step(loop: _CountingLoop) -> None:
    log: list[tuple[str, bytes]] = []
    step = step_flush(loop)
    asked: list[list[tuple[str, bytes]]] = []

    def behind() -> bool:
        asked.append(list(log))  # what was sent when it was asked
        return len(asked) == 1

    step.behind = behind
    try:
        held = CoalescingTransport(_Wire("a", log), step)
        held.hold(b"one")
        _step(loop)
        held.hold(b"two")
        _step(loop)
    finally:
        step.behind = None
    # asked once per step, after the step's answers went out
    assert asked == [[("a", b"one")], [("a", b"one"), ("a", b"two")]]
