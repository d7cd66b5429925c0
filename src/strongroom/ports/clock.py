"""The clock port: where the kernel learns the time, and the two clocks Strongroom has."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Where the core learns the time: seconds since the Unix epoch, as a float."""

    def now(self) -> float:
        """Return the current time."""
        ...


class SystemClock:
    """The wall clock: :meth:`now` is ``time.time`` itself.

    The caches read the clock several times per operation; the builtin costs a fraction
    of a Python method that calls it.
    """

    now: Callable[[], float] = staticmethod(time.time)
    """Return ``time.time()``."""


class ManualClock:
    """A clock that only moves when told to: for tests and simulations of deletion windows."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        """Return the current manual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self._now += seconds
