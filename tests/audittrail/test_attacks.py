"""The audit attacks of issue 14, reproduced on real stores: each is detected and named.

An attacker with write access to the database (not to the root of trust) truncates the
tail, edits event 50 and rehashes every later event with the unkeyed algorithm, deletes
and renumbers, or damages a column. ``strongroom admin audit verify`` (the console script)
names the first bad event and what was done, without a traceback; ``strongroom server``
refuses to start on the store, naming the checkpoint file and the events.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strongroom.audittrail import AuditBehindCheckpoint, CheckpointFile, check_at_start
from strongroom.audittrail.verify import verify_audit
from strongroom.cli.context import open_service
from strongroom.cli.init import initialise
from strongroom.errors import StoreError
from strongroom.ports.audit_chain import chain_hash
from strongroom.testing.server import console_script, free_port

EVENTS = 200


def _populate(data_dir: Path, store_url: str | None = None, root: str = "local") -> None:
    initialise(data_dir, root, store_url)
    service = open_service(data_dir)
    try:
        for i in range(EVENTS):
            service.audit.record({"operation": "Test", "n": i, "result": "Success"})
    finally:
        service.close()  # flushes and checkpoints the head


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    _populate(data)
    return data


def _db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "strongroom.db", isolation_level=None)


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [console_script(), *args], capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _verify(data_dir: Path) -> dict[str, Any]:
    done = _run("admin", "audit", "verify", "--json", "--data-dir", str(data_dir))
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if report["Intact"] else 1), done.stderr
    return report


def _server_refuses(data_dir: Path) -> str:
    done = _run(
        "server",
        "--data-dir",
        str(data_dir),
        "--port",
        str(free_port()),
        "--insecure-http",
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Refusing to start" in done.stderr
    return done.stderr


def truncate(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit WHERE seq > ?", (EVENTS - 30,))


def rehash_from_50(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq").fetchall()
    prev = bytes(rows[48][3])
    for seq, body, _, _ in rows[49:]:
        if seq == 50:
            body = bytes(body).replace(b'"n":49', b'"n":4900')
        digest = chain_hash(prev, seq, bytes(body))  # the unkeyed algorithm: no key needed
        db.execute(
            "UPDATE audit SET body=?, prev_hash=?, hash=? WHERE seq=?", (body, prev, digest, seq)
        )
        prev = digest


def renumber(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit WHERE seq = 50")
    db.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 50")


ATTACKS: dict[str, tuple[Callable[[sqlite3.Connection], None], int, str]] = {
    "truncate": (truncate, EVENTS - 29, "truncated"),
    "rehash": (rehash_from_50, 50, "forged"),
    "renumber": (renumber, 50, "renumbered"),
}


def test_an_untouched_store_verifies_against_its_checkpoint(data_dir: Path) -> None:
    report = _verify(data_dir)
    assert report["Intact"] is True and report["Events"] == EVENTS
    assert report["Keyed"] is True and report["KeyedFrom"] == 1
    assert report["Checkpoint"]["Seq"] == EVENTS
    line = (data_dir / "audit-checkpoint.json").read_text()
    assert json.loads(line)["auditCheckpoint"]["seq"] == EVENTS


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_attack_is_named_by_verify_and_refused_by_the_server(
    data_dir: Path, attack: str
) -> None:
    tamper, first_bad, kind = ATTACKS[attack]
    with _db(data_dir) as db:
        tamper(db)
    report = _verify(data_dir)
    assert report["Intact"] is False
    assert (report["BrokenAt"], report["Kind"]) == (first_bad, kind), report
    stderr = _server_refuses(data_dir)
    assert "audit-checkpoint.json" in stderr and f"event {EVENTS}" in stderr


@pytest.mark.parametrize("seq", [1, 2, 123, EVENTS - 1, EVENTS])
def test_an_edit_inside_one_flushed_batch_is_named_at_its_event(data_dir: Path, seq: int) -> None:
    # _populate's close wrote all EVENTS events in one flush, one transaction and one
    # INSERT statement: every event still has its own keyed link, so an edited body is
    # reported at that event, whether first, inside or last in the batch.
    with _db(data_dir) as db:
        db.execute(
            "UPDATE audit SET body = CAST(replace(body, '\"n\"', '\"N\"') AS BLOB) WHERE seq = ?",
            (seq,),
        )
    report = _verify(data_dir)
    assert (report["Intact"], report["BrokenAt"], report["Kind"]) == (False, seq, "rewritten")


def test_a_damaged_column_is_named_not_a_crash(data_dir: Path) -> None:
    with _db(data_dir) as db:
        db.execute("UPDATE audit SET hash = 'not a hash' WHERE seq = 50")
        db.execute("UPDATE audit SET body = 12345 WHERE seq = 60")  # any type goes in SQLite
    report = _verify(data_dir)
    assert (report["BrokenAt"], report["Kind"]) == (50, "malformed")
    assert "column hash holds str" in report["Reason"]


def test_a_missing_column_is_named_not_a_crash(data_dir: Path) -> None:
    with _db(data_dir) as db:
        db.execute("ALTER TABLE audit DROP COLUMN prev_hash")
    report = _verify(data_dir)
    assert (report["BrokenAt"], report["Kind"]) == (1, "malformed")
    assert "prev_hash" in report["Reason"]


def test_a_forged_checkpoint_file_is_refused(data_dir: Path) -> None:
    path = data_dir / "audit-checkpoint.json"
    document = json.loads(path.read_text())
    document["auditCheckpoint"]["seq"] = 10  # moving it back, to hide a later truncation
    path.write_text(json.dumps(document) + "\n")
    report = _verify(data_dir)
    assert report["Intact"] is False and "MAC does not match" in report["Reason"]


def test_the_operator_may_accept_a_cut_store_and_it_is_recorded(data_dir: Path) -> None:
    with _db(data_dir) as db:
        truncate(db)
    service = open_service(data_dir)
    try:
        sink = CheckpointFile(data_dir, service.audit.chain)
        with pytest.raises(AuditBehindCheckpoint, match=r"events 171\.\.200 are missing"):
            check_at_start(service, sink)
        accepted = check_at_start(service, sink, accept=True)
        assert accepted is not None and "truncated" in accepted
    finally:
        service.close()
    report = _verify(data_dir)
    assert report["Intact"] is True and report["Events"] == EVENTS - 30 + 1
    with _db(data_dir) as db:
        (body,) = db.execute("SELECT body FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    assert json.loads(body)["operation"] == "AcceptAuditRollback"


def test_a_legacy_unkeyed_store_is_sealed_on_first_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    initialise(data, "local")
    with _db(data) as db:  # what an older Strongroom left: an unkeyed chain, no audit key
        db.execute("DELETE FROM records WHERE kind = 'auditkey'")
        prev = bytes(32)
        for seq in range(1, 31):
            body = json.dumps({"operation": "Old", "n": seq}).encode()
            digest = chain_hash(prev, seq, body)
            db.execute("INSERT INTO audit VALUES (?, ?, ?, ?)", (seq, body, prev, digest))
            prev = digest
    unkeyed = _verify(data)
    assert unkeyed["Intact"] is True and unkeyed["Keyed"] is False
    service = open_service(data)  # the first open keys the chain and seals events 1..30
    try:
        assert service.audit.chain.keyed_from == 31
        service.audit.record({"operation": "New", "result": "Success"})
    finally:
        service.close()
    assert json.loads((data / "audit-checkpoint.json").read_text())["auditCheckpoint"]["seq"] == 31
    sealed = _verify(data)
    assert sealed["Intact"] is True and sealed["KeyedFrom"] == 31 and sealed["Events"] == 31
    with _db(data) as db:  # rewriting the sealed prefix breaks the first keyed event
        db.execute("UPDATE audit SET body = X'00' WHERE seq = 5")
    broken = _verify(data)
    assert (broken["BrokenAt"], broken["Kind"]) == (5, "rewritten")


def test_postgres_store_attacks_are_detected(tmp_path: Path, postgres_server: Any) -> None:
    import psycopg

    url = postgres_server.create_database("audit_attacks")
    data = tmp_path / "data"
    _populate(data, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM audit WHERE seq > 150")
        conn.execute(
            "UPDATE audit_head SET seq = 150, hash = (SELECT hash FROM audit WHERE seq = 150)"
        )
    service = open_service(data)
    try:
        sink = CheckpointFile(data, service.audit.chain)
        with pytest.raises(AuditBehindCheckpoint, match=r"events 151\.\.200 are missing"):
            check_at_start(service, sink)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "ALTER TABLE audit ALTER COLUMN body TYPE text USING encode(body, 'escape')"
            )
        report = verify_audit(service.store, service.audit.chain, sink.read(), str(sink.path))
    finally:
        service.store.close()
        service.root.close()
    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (1, "malformed")


def test_softhsm_root_keys_the_chain(tmp_path: Path, softhsm_token: Any) -> None:
    data = tmp_path / "data"
    _populate(data, root=softhsm_token.uri("audit-root"))
    assert os.environ.get("SOFTHSM2_CONF")
    with _db(data) as db:
        rehash_from_50(db)
    report = _verify(data)
    assert (report["BrokenAt"], report["Kind"]) == (50, "forged")


def test_a_deleted_audit_key_with_a_rehashed_chain_is_not_keyed_anew(data_dir: Path) -> None:
    with _db(data_dir) as db:  # pass the whole chain off as one from before keyed audit
        db.execute("DELETE FROM records WHERE kind = 'auditkey'")
        rows = db.execute("SELECT seq, body FROM audit ORDER BY seq").fetchall()
        prev = bytes(32)
        for seq, body in rows:
            digest = chain_hash(prev, seq, bytes(body))
            db.execute("UPDATE audit SET prev_hash=?, hash=? WHERE seq=?", (prev, digest, seq))
            prev = digest
    before = (data_dir / "audit-checkpoint.json").read_bytes()
    with pytest.raises(StoreError, match="no audit key, but"):
        open_service(data_dir)
    assert (data_dir / "audit-checkpoint.json").read_bytes() == before  # evidence kept
    assert "no audit key, but" in _server_refuses_plain(data_dir)


def _server_refuses_plain(data_dir: Path) -> str:
    done = _run(
        "server", "--data-dir", str(data_dir), "--port", str(free_port()), "--insecure-http"
    )
    assert done.returncode == 1
    return done.stderr
