"""The bounded audit backlog in process: flushed inline when full, refused while the store fails."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, SupportsIndex, overload

import pytest

from strongroom.errors import AuditUnavailableError
from strongroom.kms import Caller, audit_log
from strongroom.kms.audit_log import AuditLog
from strongroom.ports import ManualClock
from strongroom.ports.audit_chain import verify_chain
from strongroom.store import SqliteStore


def test_a_full_backlog_is_written_inline_and_refused_while_the_store_is_locked(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout_s=0.05)
    log = AuditLog(store, ManualClock(), max_pending=3)
    try:
        for i in range(3):
            log.record({"operation": "Test", "n": i})
        log.admit()  # nobody flushes in process: the full backlog is written here
        assert log.pending() == 0
        assert len(store.read(lambda tx: tx.read_audit())) == 3
        locker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the database
        for i in range(3):
            log.record({"operation": "Test", "n": i})
        with pytest.raises(AuditUnavailableError):
            log.admit()
        with pytest.raises(AuditUnavailableError):
            log.admit()  # failing: refused at once, no new attempt from the caller's thread
        assert log.refused == 2 and log.pending() == 3
        locker.execute("ROLLBACK")
        locker.close()
        assert log.flush() == 3
        log.admit()
        assert len(store.read(lambda tx: tx.read_audit())) == 6
    finally:
        store.close()


def test_fail_open_drops_past_the_bound_and_records_the_count(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    log = AuditLog(store, ManualClock(), max_pending=2, fail_open=True)
    try:
        for i in range(5):
            log.record({"operation": "Test", "n": i})
        log.admit()  # never refuses
        assert log.dropped == 3 and log.pending() == 2
        log.flush()
        bodies = [r.body for r in store.read(lambda tx: tx.read_audit())]
        assert len(bodies) == 3 and b'"count":3' in bodies[-1]
    finally:
        store.close()


class _AppendAfterCopy(list[bytes]):
    """A pending list whose first front copy lets one more event arrive, right after it.

    Stands in for another thread: ``append`` runs between the flush's copy of the batch and
    its removal of the copied events. The event is queued by ``AuditLog.record_call`` on a
    fail-closed log, which appends to the list without the log's lock, exactly as a request
    thread does (``record`` would take the lock the flush holds, and wait forever).
    """

    def __init__(self, arrive: Callable[[], None]) -> None:
        super().__init__()
        self._arrive: Callable[[], None] | None = arrive

    @overload
    def __getitem__(self, index: SupportsIndex) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> bytes | list[bytes]:
        copied = super().__getitem__(index)
        if isinstance(index, slice) and self._arrive is not None:
            arrive, self._arrive = self._arrive, None
            arrive()
        return copied


def test_an_event_queued_between_the_batch_copy_and_its_removal_is_written(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    log = AuditLog(store, ManualClock())  # fail-closed: record_call appends without the lock
    caller = Caller(tenant="111122223333", principal_arn="arn:aws:iam::111122223333:user/a")
    try:
        log.record_call(caller, "r1", "Decrypt", None, "Success")
        log.record_call(caller, "r2", "Decrypt", None, "Success")
        racing = _AppendAfterCopy(lambda: log.record_call(caller, "r3", "Decrypt", None, "Success"))
        racing.extend(log._pending)
        log._pending = racing
        assert log.flush() == 3
        assert log.pending() == 0
        bodies = [json.loads(r.body) for r in store.read(lambda tx: tx.read_audit())]
        assert [b["requestId"] for b in bodies] == ["r1", "r2", "r3"]
        assert racing._arrive is None  # the event did arrive mid-flush
    finally:
        store.close()


class _AlwaysArriving(list[bytes]):
    """A pending list to which one more event arrives at every batch copy: steady load."""

    def __init__(self, arrive: Callable[[], None]) -> None:
        super().__init__()
        self._arrive = arrive

    @overload
    def __getitem__(self, index: SupportsIndex) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> bytes | list[bytes]:
        copied = super().__getitem__(index)
        if isinstance(index, slice):
            self._arrive()
        return copied


def test_a_flush_under_steady_arrivals_ends(tmp_path: Path) -> None:
    # Flushing until the queue was empty never ended under steady load: the flusher ran a
    # stream of small transactions. A flush writes what was queued when it began, then once
    # what arrived meanwhile; the rest waits for the next flush.
    store = SqliteStore(tmp_path / "s.db")
    log = AuditLog(store, ManualClock())
    caller = Caller(tenant="111122223333", principal_arn="arn:aws:iam::111122223333:user/a")
    arrived = iter(range(3, 100))
    try:
        log.record_call(caller, "r1", "Decrypt", None, "Success")
        log.record_call(caller, "r2", "Decrypt", None, "Success")
        steady = _AlwaysArriving(
            lambda: log.record_call(caller, f"r{next(arrived)}", "Decrypt", None, "Success")
        )
        steady.extend(log._pending)
        log._pending = steady
        assert log.flush() == 3  # r1 and r2, then r3, which arrived while they were written
        assert log.pending() == 1  # r4 arrived during that: it waits for the next flush
        assert log.flush() == 2  # r4, then r5
        bodies = [json.loads(r.body) for r in store.read(lambda tx: tx.read_audit())]
        assert [b["requestId"] for b in bodies] == ["r1", "r2", "r3", "r4", "r5"]
    finally:
        store.close()


def test_a_flush_writes_max_batch_pieces_then_the_arrivals_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two passes: the 5 queued events in pieces of MAX_BATCH (one transaction each), then
    # the 3 that arrived while those were written, in pieces too; the 2 that arrived during
    # the second pass wait. Every event is chained in order.
    monkeypatch.setattr(audit_log, "MAX_BATCH", 2)
    store = SqliteStore(tmp_path / "s.db")
    log = AuditLog(store, ManualClock())
    caller = Caller(tenant="111122223333", principal_arn="arn:aws:iam::111122223333:user/a")
    arrived = iter(range(6, 100))
    transactions = 0
    write = store.write

    def counted(fn: Callable[[Any], Any]) -> Any:
        nonlocal transactions
        transactions += 1
        return write(fn)

    monkeypatch.setattr(store, "write", counted)
    try:
        for i in range(1, 6):
            log.record_call(caller, f"r{i}", "Decrypt", None, "Success")
        steady = _AlwaysArriving(
            lambda: log.record_call(caller, f"r{next(arrived)}", "Decrypt", None, "Success")
        )
        steady.extend(log._pending)
        log._pending = steady
        assert log.flush() == 8
        assert transactions == 5  # 2 + 2 + 1, then 2 + 1
        assert log.pending() == 2
        records = store.read(lambda tx: tx.read_audit())
        assert verify_chain(records) == (8, records[-1].hash)
        bodies = [json.loads(r.body) for r in records]
        assert [b["requestId"] for b in bodies] == [f"r{i}" for i in range(1, 9)]
    finally:
        store.close()


def test_a_flush_with_nothing_queued_still_writes_the_key_uses(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    log = AuditLog(store, ManualClock())
    try:
        arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        log.key_uses.note(arn, "Decrypt", 5.0, "r1")
        assert log.flush() == 0  # no event, but the transaction of the uses ran
        assert log.key_uses.latest(arn) is None  # committed: no longer held in memory
        assert store.read(lambda tx: tx.read_audit()) == []
    finally:
        store.close()
