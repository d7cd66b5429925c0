"""Waiting until a point in time: on the wall clock, or on a manual clock tests move.

The Workload API sleeps until an SVID's half life to push its successor. It does so
through a :class:`Scheduler`, so tests can drive an hour of rotation in milliseconds:
:class:`ManualScheduler` wakes its sleepers when :meth:`ManualScheduler.advance` moves its
:class:`~strongroom.ports.ManualClock` past their time (from any thread).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Protocol

from strongroom.ports import Clock, ManualClock

MAX_NAP_SECONDS = 60.0


class Scheduler(Protocol):
    """Something that sleeps until a time of its clock."""

    @property
    def clock(self) -> Clock:
        """The clock the deadlines are on."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Return once ``clock.now() >= when``."""
        ...


class SystemScheduler:
    """Sleeps on the event loop until the clock (the wall clock by default) reaches a time."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    @property
    def clock(self) -> Clock:
        """The clock the deadlines are on."""
        return self._clock

    async def sleep_until(self, when: float) -> None:
        """Sleep in naps of at most a minute (a clock step is noticed within one)."""
        while (left := when - self._clock.now()) > 0:
            await asyncio.sleep(min(left, MAX_NAP_SECONDS))


class ManualScheduler:
    """Sleepers wake only when :meth:`advance` moves the manual clock past their time."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def clock(self) -> ManualClock:
        """The clock the deadlines are on."""
        return self._clock

    @property
    def sleepers(self) -> int:
        """How many coroutines are waiting now (tests wait for this to settle)."""
        with self._lock:
            return sum(1 for _, _, f in self._sleepers if not f.done())

    async def sleep_until(self, when: float) -> None:
        """Wait until :meth:`advance` has moved the clock to ``when`` or beyond."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._clock.now() >= when:
                return
            self._sleepers.append((when, loop, future))
        try:
            await future
        finally:
            with self._lock:
                self._sleepers = [s for s in self._sleepers if s[2] is not future]

    def advance(self, seconds: float) -> None:
        """Move the clock forward and wake every sleeper whose time has come."""
        with self._lock:
            self._clock.advance(seconds)
            now = self._clock.now()
            due = [(loop, f) for when, loop, f in self._sleepers if when <= now]
        for loop, future in due:
            loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
