"""A small, thread-safe cache bounded by age and size, for unwrapped key material.

Entries expire ``ttl_s`` after they were put; past ``max_entries`` the oldest go first.
The cache never logs or shows its values.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A least-recently-put cache with a time-to-live per entry."""

    def __init__(self, ttl_s: float, max_entries: int, now: Callable[[], float]) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._now = now
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TtlCache(entries={len(self._items)}, values=<hidden>)"

    def get(self, key: K) -> V | None:
        """Return the live value for ``key`` or ``None``."""
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self._now() >= expires:
            with self._lock:
                self._items.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``; evict the oldest entries past the size bound."""
        if self._max <= 0 or self._ttl <= 0:
            return
        with self._lock:
            self._items[key] = (self._now() + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def discard(self, key: K) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._items.pop(key, None)

    def drop_where(self, predicate: Callable[[K], bool]) -> None:
        """Remove every entry whose key matches ``predicate``."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                del self._items[key]

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._items.clear()
