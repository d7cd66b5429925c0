"""Object backend in memory: for tests and throwaway stores (nothing is durable)."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator

from strongroom.errors import NotFoundError


class MemoryBackend:
    """Objects in a dict; a write becomes visible only when its block ends cleanly."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def create(self, key: str) -> Iterator[io.BytesIO]:
        """A buffer, stored under ``key`` when the block ends without an exception."""
        sink = io.BytesIO()
        yield sink
        with self._lock:
            self._objects[key] = sink.getvalue()

    def open(self, key: str) -> io.BytesIO:
        """The object's bytes as a file."""
        return io.BytesIO(self.read(key))

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        with self._lock:
            try:
                return self._objects[key]
            except KeyError:
                raise NotFoundError(f"Object {key!r} does not exist.") from None

    def write(self, key: str, data: bytes) -> None:
        """Store raw bytes under ``key`` (tests use it to tamper with objects)."""
        with self._lock:
            self._objects[key] = bytes(data)

    def delete(self, key: str) -> None:
        """Forget the object."""
        with self._lock:
            if self._objects.pop(key, None) is None:
                raise NotFoundError(f"Object {key!r} does not exist.")

    def keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix``, sorted."""
        with self._lock:
            return iter(sorted(k for k in self._objects if k.startswith(prefix)))

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def __repr__(self) -> str:
        return f"MemoryBackend({len(self)} objects)"
