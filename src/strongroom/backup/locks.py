"""Repository locks: writers share, prune is exclusive; stale locks are ignored.

A lock is ``locks/<random hex>``: "SRBL" | version 0x01 | JSON {"exclusive", "hostname",
"pid", "time"}. Take: write yours, then list; if a live lock conflicts (either side
exclusive), remove yours and fail. A lock is stale when its time is older than
:data:`STALE_SECONDS` or its process (on this host) is gone; a holder refreshes its lock
(a new file, then the old one removed) every :data:`REFRESH_SECONDS`. A lock the store
cannot delete (Object Lock default retention) just goes stale.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

from strongroom.backup.errors import RepositoryLockedError
from strongroom.backup.store import RepoStore
from strongroom.crypto.hazmat import random_bytes
from strongroom.errors import StrongroomError

MAGIC = b"SRBL\x01"
STALE_SECONDS = 1800.0
REFRESH_SECONDS = 300.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(doc: dict[str, object], now: float) -> bool:
    """Whether a lock no longer counts."""
    stamp = doc.get("time")
    if not isinstance(stamp, int | float) or now - stamp > STALE_SECONDS:
        return True
    pid = doc.get("pid")
    return doc.get("hostname") == socket.gethostname() and isinstance(pid, int) and not _alive(pid)


class RepoLock:
    """A context manager holding a shared (writers) or exclusive (prune) lock."""

    def __init__(self, store: RepoStore, *, exclusive: bool) -> None:
        self._store = store
        self._exclusive = exclusive
        self._name: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> str:
        doc = {"exclusive": self._exclusive, "hostname": socket.gethostname(),
               "pid": os.getpid(), "time": time.time()}  # fmt: skip
        name = f"locks/{random_bytes(16).hex()}"
        self._store.put(name, MAGIC + json.dumps(doc).encode())
        return name

    def _remove(self, name: str) -> None:
        with contextlib.suppress(StrongroomError):
            self._store.delete(name)

    def conflicts(self) -> list[str]:
        """Live locks of others that conflict with this one."""
        found = []
        now = time.time()
        for name in self._store.list("locks/"):
            if name == self._name:
                continue
            try:
                data = self._store.get(name)
                doc = json.loads(data[len(MAGIC) :]) if data.startswith(MAGIC) else {}
            except (StrongroomError, ValueError):
                continue
            if not isinstance(doc, dict) or is_stale(doc, now):
                continue
            if self._exclusive or doc.get("exclusive"):
                found.append(f"{doc.get('hostname')} pid {doc.get('pid')}")
        return found

    def __enter__(self) -> RepoLock:
        self._name = self._write()
        held = self.conflicts()
        if held:
            self._remove(self._name)
            self._name = None
            kind = "prune" if not self._exclusive else "another operation"
            raise RepositoryLockedError(
                f"The repository is locked by {kind} ({', '.join(held)}); try again later."
            )
        self._thread = threading.Thread(target=self._refresh, daemon=True)
        self._thread.start()
        return self

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            old, self._name = self._name, self._write()
            if old:
                self._remove(old)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._name:
            self._remove(self._name)
