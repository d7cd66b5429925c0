"""The audit buffer: events are queued in memory and written to the chain in batches.

Writing each event in its own transaction would cap throughput at the store's commit rate,
so :meth:`AuditLog.record` only queues; :meth:`AuditLog.flush` appends everything queued in
one transaction. The server flushes on a timer (well within a second) and on shutdown;
in-process users call :meth:`flush` when they close the service.
"""

from __future__ import annotations

import json
import threading
from json.encoder import encode_basestring_ascii
from typing import Any

from strongroom.kms.caller import Caller
from strongroom.kms.key_usage import KeyUseRecord, KeyUseTracker, save_uses
from strongroom.ports import Clock, Store, StoreTx

MAX_BATCH = 5000
_MAX_PREFIXES = 1024

_quote = encode_basestring_ascii
# the fields before "requestId" depend only on the caller, the key and the operation
_CALL_PREFIX = (
    '{"accessKeyId":%s,"account":%s,"keyArn":%s,"operation":%s,"principal":%s,'
    '"region":%s,"requestId":'
)


class AuditLog:
    """Queue audit events and append them to the store's hash chain in batches."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._encode = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
        # (id(caller), key ARN, operation) -> (caller, body prefix); the entry holds the
        # caller, so its id cannot name another object while the entry exists
        self._prefixes: dict[tuple[int, str | None, str], tuple[Caller, str]] = {}
        self.key_uses = KeyUseTracker()
        """The newest use of each key, written with the next batch (GetKeyLastUsage)."""

    def record(self, event: dict[str, Any]) -> None:
        """Queue one event; ``time`` is added from the clock."""
        body = self._encode({"time": self._clock.now(), **event}).encode("utf-8")
        with self._lock:
            self._pending.append(body)

    def record_call(
        self,
        caller: Caller,
        request_id: str,
        operation: str,
        key_arn: str | None,
        result: str,
        at: float | None = None,
    ) -> None:
        """Queue the event of one operation call (the hot path of :meth:`record`).

        The body is byte for byte what :meth:`record` makes of the same fields (sorted
        keys, no spaces, ASCII escapes), built from a template: ``json.dumps`` of a dict
        costs more than the AES of a Decrypt. The part before the request id is made once
        per caller, key and operation. ``at`` is the event's time if the caller has read
        the clock already.
        """
        cache_key = (id(caller), key_arn, operation)
        found = self._prefixes.get(cache_key)
        if found is None or found[0] is not caller:
            prefix = _CALL_PREFIX % (
                _quote(caller.access_key_id),
                _quote(caller.tenant),
                "null" if key_arn is None else _quote(key_arn),
                _quote(operation),
                _quote(caller.principal_arn),
                _quote(caller.region),
            )
            if len(self._prefixes) >= _MAX_PREFIXES:
                self._prefixes.clear()
            self._prefixes[cache_key] = found = (caller, prefix)
        now = float.__repr__(float(self._clock.now() if at is None else at))
        parts = (found[1], _quote(request_id), ',"result":', _quote(result), ',"time":', now, "}")
        body = "".join(parts).encode("ascii")
        with self._lock:
            self._pending.append(body)

    def pending(self) -> int:
        """How many events wait for the next flush."""
        return len(self._pending)

    def flush(self) -> int:
        """Append every queued event to the chain; return how many were written.

        The keys' newest uses noted since the last flush go in the first transaction.
        """
        written = 0
        with self._flush_lock:
            uses = self.key_uses.take()
            while True:
                with self._lock:
                    batch = self._pending[:MAX_BATCH]
                    del self._pending[:MAX_BATCH]
                if not batch and not uses:
                    return written
                try:
                    self._store.write(lambda tx, b=batch, u=uses: _append(tx, b, u))  # type: ignore[misc]
                except BaseException:
                    with self._lock:
                        self._pending[:0] = batch
                    self.key_uses.give_back(uses)
                    raise
                written += len(batch)
                if uses:
                    self.key_uses.written()
                uses = {}


def _append(tx: StoreTx, batch: list[bytes], uses: dict[str, KeyUseRecord]) -> None:
    if batch:
        tx.append_audit(batch)
    if uses:
        save_uses(tx, uses)
