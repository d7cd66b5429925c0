"""A running server whose audit log cannot be written: fail closed by default, open if told.

The store is made unwritable the way it happens to users: another connection holds the
SQLite write lock. Reads still work (WAL), so ``Decrypt`` could go on; with the default
``--audit-failure closed`` it is refused (``DependencyTimeoutException``, HTTP 503) once
``--audit-backlog`` events wait, ``/readyz`` says not ready and the metrics show it; once
the lock goes, every waiting event is written and calls succeed again. A chain cut under
the running server is not continued, and the server then refuses to start again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strongroom.testing.server import ServerProcess, client_for, free_port, run_cli

DEADLINE_SECONDS = 30.0


def _until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _events(data_dir: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(data_dir / "strongroom.db") as db:
        return [json.loads(b) for (b,) in db.execute("SELECT body FROM audit ORDER BY seq")]


def _metric(server: ServerProcess, name: str) -> float:
    status, body = server.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


class Lock:
    """Another connection holding the SQLite write lock, as another writer would."""

    def __init__(self) -> None:
        self.db: sqlite3.Connection | None = None

    def take(self, data_dir: Path) -> None:
        self.db = sqlite3.connect(data_dir / "strongroom.db", isolation_level=None)
        self.db.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.db is not None:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.db.close()
            self.db = None


def _start(data_dir: Path, *args: str) -> tuple[ServerProcess, Any, bytes]:
    server = ServerProcess(data_dir, "--insecure-http", "--audit-backlog", "5", *args).start()
    kms = client_for(server.info())
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
    _until(lambda: any(e["operation"] == "Encrypt" for e in _events(data_dir)), "the flush")
    return server, kms, blob


def test_fail_closed_refuses_when_the_store_is_locked_and_recovers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server, kms, blob = _start(data)
    lock = Lock()
    try:
        lock.take(data)
        answered = 0
        with pytest.raises(ClientError) as refused:
            for _ in range(100):
                kms.decrypt(CiphertextBlob=blob)
                answered += 1
        assert refused.value.response["Error"]["Code"] == "DependencyTimeoutException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert 5 <= answered <= 6  # the backlog bound, plus the one in flight at most
        assert server.get("/readyz")[0] == 503
        _until(lambda: _metric(server, "strongroom_audit_refusing") == 1, "the gauge")
        assert _metric(server, "strongroom_audit_backlog") >= 5
        lock.release()  # the store takes writes again
        _until(lambda: server.get("/readyz")[0] == 200, "readiness")
        kms.decrypt(CiphertextBlob=blob)
        decrypts = _until(
            lambda: len([e for e in _events(data) if e["operation"] == "Decrypt"]) == answered + 1,
            "every answered Decrypt in the chain",
        )
        assert decrypts
        _until(lambda: _metric(server, "strongroom_audit_refused_calls_total") >= 1, "the count")
    finally:
        lock.release()
        server.close()


def test_fail_open_serves_on_and_records_what_it_dropped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server, kms, blob = _start(data, "--audit-failure", "open")
    lock = Lock()
    try:
        lock.take(data)
        for _ in range(12):
            kms.decrypt(CiphertextBlob=blob)
        assert server.get("/readyz")[0] == 200
        lock.release()

        # A flush tried while the store is locked puts its batch, drop record included,
        # back in the queue, and drops go on being counted into the next record: the
        # drops may be reported over several records, never fewer than were made.
        def dropped() -> int:
            return sum(
                int(e["count"]) for e in _events(data) if e["operation"] == "AuditEventsDropped"
            )

        _until(lambda: dropped() >= 6, "records of at least 6 dropped events")
    finally:
        lock.release()
        server.close()


def test_a_chain_cut_under_the_running_server_is_not_continued(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server, kms, blob = _start(data)
    try:
        for _ in range(5):
            kms.decrypt(CiphertextBlob=blob)
        _until(lambda: len(_events(data)) >= 8, "the flush")
        with sqlite3.connect(data / "strongroom.db") as db:
            db.execute("DELETE FROM audit WHERE seq > (SELECT max(seq) - 3 FROM audit)")
        kms.decrypt(CiphertextBlob=blob)  # queued; the next flush finds the cut

        def refused() -> bool:
            try:
                kms.decrypt(CiphertextBlob=blob)
            except ClientError as exc:
                return bool(exc.response["Error"]["Code"] == "DependencyTimeoutException")
            return False

        _until(refused, "the refusal")
        assert server.get("/readyz")[0] == 503
    finally:
        server.close()
    out = run_cli(
        "server", "--data-dir", str(data), "--port", str(free_port()), "--insecure-http", expect=1
    )
    assert "Refusing to start" in out and "missing" in out
