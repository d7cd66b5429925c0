"""The audit buffer: events are queued in memory and written to the chain in batches.

Writing each event in its own transaction would cap throughput at the store's commit rate,
so :meth:`AuditLog.record` only queues; :meth:`AuditLog.flush` appends what is queued in
one transaction (and what arrived meanwhile in one more). The server flushes on a timer
(well within a second) and on shutdown; in-process users call :meth:`close` when they close
the service.

Three guards make the log something you can prove:

- The chain is keyed (:class:`~strongroom.ports.audit_chain.AuditChain`) and after each
  flush, every ``CHECKPOINT_EVENTS`` events or ``CHECKPOINT_SECONDS``, and at
  :meth:`close`, a signed checkpoint of the head goes to the :class:`CheckpointSink`.
- Every append first checks, in its own transaction, that the newest event this process
  knows to be genuine (its own last append, or the newest checkpoint) is still in the
  store unchanged: a chain cut or rewritten under a running process is not continued.
- The backlog is bounded. With ``fail_open=False`` (the default) :meth:`admit` refuses new
  operations once ``max_pending`` events wait or the chain was found altered; with
  ``fail_open=True`` operations go on and events past the bound are dropped and counted
  (an ``AuditEventsDropped`` event records how many once the store takes writes again).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from strongroom.errors import AuditUnavailableError, StoreError
from strongroom.kms.audit_checkpoint import Checkpoint, CheckpointSink
from strongroom.kms.audit_text import SUCCESS_TIME, call_prefix, event_time, quote
from strongroom.kms.caller import Caller
from strongroom.kms.key_usage import KeyUseRecord, KeyUseTracker, save_uses
from strongroom.ports import AuditRecord, Clock, Store, StoreTx
from strongroom.ports.audit_chain import UNKEYED, AuditChain

MAX_BATCH = 5000
MAX_PENDING = 10_000
"""Events that may wait unwritten before operations are refused (or, fail-open, dropped)."""
CHECKPOINT_EVENTS = 10_000
CHECKPOINT_SECONDS = 2.0
_MAX_PREFIXES = 1024

_PrefixKey = tuple[int, str | None, str]


class AuditLog:
    """Queue audit events and append them to the store's hash chain in batches."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        chain: AuditChain = UNKEYED,
        checkpoints: CheckpointSink | None = None,
        *,
        max_pending: int = MAX_PENDING,
        fail_open: bool = False,
    ) -> None:
        self._store = store
        self._clock = clock
        self.chain = chain
        """How event hashes are made (keyed with the deployment's audit key)."""
        self.checkpoints = checkpoints
        self.max_pending = max_pending
        self.fail_open = fail_open
        self.dropped = 0
        """Events dropped because the backlog was full (fail-open only), in total."""
        self.refused = 0
        """Operations refused because the audit log could not be written, in total."""
        self.altered: str | None = None
        """Why appending stopped for good: the chain was cut or rewritten under us."""
        self._unreported_drops = 0
        self._last: tuple[int, bytes] | None = None  # our newest append: (seq, hash)
        self._published = 0  # seq of the newest checkpoint we published
        self._unpublished = 0  # events appended since
        self._published_at = clock.now()
        self._pending: list[bytes] = []
        self._in_flight = 0  # events of the batch being written now (still unwritten)
        self._failing = False  # the last flush failed: no inline flush until one works
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._encode = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
        # (id(caller), key ARN, operation) -> (caller, body prefix); the entry holds the
        # caller, so its id cannot name another object while the entry exists
        self._prefixes: dict[_PrefixKey, tuple[Caller, str]] = {}
        self.key_uses = KeyUseTracker()
        """The newest use of each key, written with the next batch (GetKeyLastUsage)."""

    def record(self, event: dict[str, Any]) -> None:
        """Queue one event; ``time`` is added from the clock."""
        body = self._encode({"time": self._clock.now(), **event}).encode("utf-8")
        self._queue(body)

    def _queue(self, body: bytes) -> None:
        with self._lock:
            if self.fail_open and len(self._pending) + self._in_flight >= self.max_pending:
                self.dropped += 1
                self._unreported_drops += 1
                return
            self._pending.append(body)

    @property
    def refusing(self) -> bool:
        """Whether operations are refused now (fail-closed, and the log cannot keep up)."""
        if self.fail_open:
            return False
        return self.altered is not None or self.pending() >= self.max_pending

    def admit(self) -> None:
        """Raise :class:`AuditUnavailableError` if an operation must be refused now.

        A full backlog that nobody is writing (an in-process user between flushes) is
        flushed here, once per ``max_pending`` events; while the store fails, or another
        thread is writing, the operation is refused instead of waiting.
        """
        # the test of refusing, inlined: it runs before every operation
        if self.fail_open or (
            self.altered is None and len(self._pending) + self._in_flight < self.max_pending
        ):
            return
        if self.altered is None and not self._failing and self._flush_lock.acquire(False):
            try:
                self._flush_held()
            except Exception:  # noqa: S110 - the store failed: refused below, retried later
                pass
            finally:
                self._flush_lock.release()
        if self.refusing:
            self.refused += 1
            why = self.altered or f"{self.pending()} events wait to be written"
            raise AuditUnavailableError(
                f"The audit log cannot be written ({why}); the operation was refused. Retry later."
            )

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
            found = self._prefix(caller, key_arn, operation, cache_key)
        now = float(self._clock.now() if at is None else at)
        result_text = quote(result)
        text = (found[1], quote(request_id), ',"result":', result_text, ',"time":', event_time(now))
        body = "".join(text).encode("ascii")
        if self.fail_open:
            self._queue(body)  # may drop: counted under the lock
        else:
            # fail-closed never drops here (admit refused the operation before it ran):
            # one list append, which is atomic, needs no lock; a flush takes events from
            # the front under the lock and puts them back at the front, never at the end
            self._pending.append(body)

    def record_use(
        self, caller: Caller, request_id: str, operation: str, key_arn: str, at: float
    ) -> None:
        """A success of ``operation`` on ``key_arn`` at ``at``: its event and the key's use.

        What :meth:`Kernel.record <strongroom.kms.kernel.Kernel.record>` does for a
        successful tracked operation (``key_uses.note`` and :meth:`record_call` with
        ``result="Success"``), in one frame: the hot path's every Encrypt, Decrypt and
        GenerateDataKey comes here. The same event bytes.
        """
        uses = self.key_uses
        with uses._lock:  # KeyUseTracker.note, inlined
            uses._latest[key_arn] = (operation, at, request_id)
        cache_key = (id(caller), key_arn, operation)
        found = self._prefixes.get(cache_key)
        if found is None or found[0] is not caller:
            found = self._prefix(caller, key_arn, operation, cache_key)
        body = "".join((found[1], quote(request_id), SUCCESS_TIME, event_time(float(at))))
        if self.fail_open:
            self._queue(body.encode("ascii"))
        else:
            self._pending.append(body.encode("ascii"))  # as in record_call

    def _prefix(
        self, caller: Caller, key_arn: str | None, operation: str, cache_key: _PrefixKey
    ) -> tuple[Caller, str]:
        """The event's text up to its request id, made once per caller, key and operation."""
        prefix = call_prefix(caller, key_arn, operation)
        if len(self._prefixes) >= _MAX_PREFIXES:
            self._prefixes.clear()
        self._prefixes[cache_key] = found = (caller, prefix)
        return found

    def pending(self) -> int:
        """How many events are not written yet (queued, or in a write under way)."""
        return len(self._pending) + self._in_flight

    def flush(self) -> int:
        """Append the queued events to the chain; return how many were written.

        Those queued when it is called are written, then once those that arrived while
        they were written; later ones wait for the next flush (:meth:`close` flushes until
        none is left). The keys' newest uses noted since the last flush go in the first
        transaction. A checkpoint follows when one is due. Raises :class:`StoreError` (the
        events stay queued) if the store fails or the chain was altered under this process.
        """
        with self._flush_lock:
            return self._flush_held()

    def _flush_held(self) -> int:
        """:meth:`flush`, with the flush lock held."""
        try:
            written = self._write_all()
        except BaseException:
            self._failing = True
            raise
        self._failing = False
        return written

    def _write_all(self) -> int:
        if self.altered is not None:
            raise StoreError(self.altered)
        # What is queued now, in MAX_BATCH pieces, then once what arrived while that was
        # written; later arrivals wait for the next flush. Writing until the queue is
        # empty never ends under steady load: a flush became a stream of transactions of
        # a few dozen events each (a commit, an fsync and GIL handoffs apiece).
        uses = self.key_uses.take()
        queued = len(self._pending)
        written = self._write_queued(queued, uses) if queued else 0
        # the second pass writes the keys' uses (and a drop count) if the first did not run
        written += self._write_queued(len(self._pending), {} if queued else uses)
        if self._unpublished and (
            self._unpublished >= CHECKPOINT_EVENTS
            or self._clock.now() - self._published_at >= CHECKPOINT_SECONDS
        ):
            self.publish_checkpoint()
        return written

    def _write_queued(self, limit: int, uses: dict[str, KeyUseRecord]) -> int:
        """Append the first ``limit`` queued events, ``MAX_BATCH`` per transaction.

        ``uses`` and an ``AuditEventsDropped`` event, if drops are unreported, go in the
        first transaction, which runs even with no event to write if they are there.
        Returns how many events were written; on failure puts the batch back and raises.
        """
        written = 0
        while True:
            with self._lock:
                batch = self._pending[: min(MAX_BATCH, limit)]
                limit -= len(batch)
                # exactly what was taken: a fail-closed append runs without the lock and
                # may land between the copy and this removal
                del self._pending[: len(batch)]
                self._in_flight = len(batch)
                if self._unreported_drops:
                    batch.append(self._drop_event(self._unreported_drops))
                    self._unreported_drops = 0
            if not batch and not uses:
                return written
            anchor = self._anchor()
            try:
                last = self._store.write(
                    lambda tx, b=batch, u=uses, a=anchor: self._append(tx, b, u, a)  # type: ignore[misc]
                )
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch
                    self._in_flight = 0
                self.key_uses.give_back(uses)
                raise
            with self._lock:
                self._in_flight = 0
            written += len(batch)
            if uses:
                self.key_uses.written()
                uses = {}
            if last is not None:
                self._last = (last.seq, last.hash)
                self._unpublished += len(batch)
            if limit <= 0:
                return written

    def _drop_event(self, count: int) -> bytes:
        event = {"operation": "AuditEventsDropped", "count": count, "result": "Success"}
        return self._encode({"time": self._clock.now(), **event}).encode("utf-8")

    def _anchor(self) -> tuple[int, bytes] | None:
        """The newest event known genuine: our own last append or the newest checkpoint."""
        best = self._last
        newest = self.checkpoints.newest() if self.checkpoints is not None else None
        if newest is not None and (best is None or newest.seq > best[0]):
            best = (newest.seq, newest.head)
        return best

    def _append(
        self,
        tx: StoreTx,
        batch: list[bytes],
        uses: dict[str, KeyUseRecord],
        anchor: tuple[int, bytes] | None,
    ) -> AuditRecord | None:
        if batch and anchor is not None:
            seq, head = anchor
            found = tx.read_audit(after_seq=seq - 1, limit=1)
            if not found or found[0].seq != seq or found[0].hash != head:
                self._altered(seq, "is gone" if not found or found[0].seq != seq else "changed")
        last = tx.append_audit_head(batch, self.chain) if batch else None
        if uses:
            save_uses(tx, uses)
        return last

    def _altered(self, seq: int, what: str) -> None:
        self.altered = (
            f"audit event {seq}, known genuine to this process, {what}: the chain was cut or "
            "rewritten in the store; nothing more is appended (restart the server to check "
            "it against the last checkpoint)"
        )
        if self._last is not None and self._last[0] > self._published and self.chain.keyed:
            self.publish_checkpoint()  # keep what we know: a restart then refuses the store
        raise StoreError(self.altered)

    def publish_checkpoint(self) -> Checkpoint | None:
        """Send a signed checkpoint of this process's newest append to the sink (if newer)."""
        if self.checkpoints is None or not self.chain.keyed or self._last is None:
            return None
        seq, head = self._last
        checkpoint = Checkpoint(seq, head, self.chain.keyed_from, int(self._clock.now()))
        self.checkpoints.publish(checkpoint)
        self._published, self._unpublished = seq, 0
        self._published_at = self._clock.now()
        return checkpoint

    def close(self) -> None:
        """Flush, then publish a checkpoint of the newest append (a clean shutdown)."""
        while self.flush() and self.pending():
            pass  # events queued by other threads during the flush
        if self._last is not None and self._last[0] > self._published:
            self.publish_checkpoint()
