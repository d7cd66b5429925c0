"""SQLite's audit append: a batch is cut into statements by size, and each keeps the chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.ports.audit_chain import GENESIS_HASH, AuditChain, verify_chain
from strongroom.store import SqliteStore, sqlite_audit


def test_statements_split_by_body_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_audit, "BYTES_PER_INSERT", 10)
    assert sqlite_audit.statements([]) == [(0, 0)]
    assert sqlite_audit.statements([3, 3, 4]) == [(0, 3)]
    assert sqlite_audit.statements([3, 3, 5, 0, 11, 2]) == [(0, 2), (2, 4), (4, 5), (5, 6)]


def test_a_batch_over_the_statement_bound_is_appended_whole_and_chained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_audit, "BYTES_PER_INSERT", 100)
    chain = AuditChain(bytes(range(32)))
    bodies = [bytes([i]) * (i * 7 % 130) for i in range(60)]  # some alone over the bound
    store = SqliteStore(tmp_path / "s.db")
    try:
        store.write(lambda tx: tx.append_audit([b"first"], chain))
        head = store.write(lambda tx: tx.append_audit_head(bodies, chain))
        records = store.read(lambda tx: tx.read_audit(limit=1000))
        assert [r.body for r in records] == [b"first", *bodies]
        assert head == records[-1]
        assert [r.hash for r in records] == chain.links(GENESIS_HASH, 0, [b"first", *bodies])
        assert verify_chain(records, chain=chain) == (61, records[-1].hash)
    finally:
        store.close()
