"""The bounded audit backlog in process: flushed inline when full, refused while the store fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from strongroom.errors import AuditUnavailableError
from strongroom.kms.audit_log import AuditLog
from strongroom.ports import ManualClock
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
