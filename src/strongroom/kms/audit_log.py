"""The audit buffer: events are queued in memory and written to the chain in batches.

Writing each event in its own transaction would cap throughput at the store's commit rate,
so :meth:`AuditLog.record` only queues; :meth:`AuditLog.flush` appends everything queued in
one transaction. The server flushes on a timer (well within a second) and on shutdown;
in-process users call :meth:`flush` when they close the service.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from strongroom.kms.ports import Clock, Store

MAX_BATCH = 5000


class AuditLog:
    """Queue audit events and append them to the store's hash chain in batches."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._encode = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode

    def record(self, event: dict[str, Any]) -> None:
        """Queue one event; ``time`` is added from the clock."""
        body = self._encode({"time": self._clock.now(), **event}).encode("utf-8")
        with self._lock:
            self._pending.append(body)

    def pending(self) -> int:
        """How many events wait for the next flush."""
        return len(self._pending)

    def flush(self) -> int:
        """Append every queued event to the chain; return how many were written."""
        written = 0
        with self._flush_lock:
            while True:
                with self._lock:
                    batch = self._pending[:MAX_BATCH]
                    del self._pending[:MAX_BATCH]
                if not batch:
                    return written
                try:
                    self._store.write(lambda tx, b=batch: tx.append_audit(b))  # type: ignore[misc]
                except BaseException:
                    with self._lock:
                        self._pending[:0] = batch
                    raise
                written += len(batch)
