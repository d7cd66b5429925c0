"""Plumbing of the chunk pipeline: a byte budget for in-flight chunks, holes, done futures."""

from __future__ import annotations

import threading
from concurrent.futures import Future

ZEROS = bytes(16 << 20)
"""A zero buffer at least as long as the largest chunk."""


class ByteBudget:
    """Blocks the reader while too many bytes wait in the pool."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._cond = threading.Condition()

    def take(self, n: int) -> None:
        """Wait until ``n`` bytes fit (a single item larger than the limit still passes)."""
        with self._cond:
            while self._used and self._used + n > self._limit:
                self._cond.wait()
            self._used += n

    def give(self, n: int) -> None:
        """Return ``n`` bytes."""
        with self._cond:
            self._used -= n
            self._cond.notify_all()


def is_zero(data: memoryview) -> bool:
    """Whether a chunk is all zero bytes (a hole of a sparse file)."""
    n = len(data)
    return data[0] == 0 and data[n - 1] == 0 and ZEROS.startswith(data)


def done_future(value: bytes | int) -> Future[bytes | int]:
    """A future that already holds ``value`` (a zero run needs no work)."""
    future: Future[bytes | int] = Future()
    future.set_result(value)
    return future
