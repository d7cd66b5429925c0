"""Crash safety: SIGKILL a worker that creates, rotates and encrypts, many times over.

After every kill the store must open cleanly (SQLite ``PRAGMA integrity_check`` says
``ok``, the audit chain verifies), every acknowledged key must exist with at least its
acknowledged rotations, and every acknowledged ciphertext must decrypt to its plaintext.
Kill moments come from a seeded RNG, so a failure replays with the same schedule.
"""

from __future__ import annotations

import hashlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from strongroom.cli.audit import verify_store_chain
from strongroom.cli.context import open_service
from strongroom.cli.init import initialise
from strongroom.ports import StoreTx
from strongroom.testing.crash_worker import Acks, drop_torn_line, read_acks

if TYPE_CHECKING:
    from strongroom.testing.postgres import TempPostgres

SEED = 20240601


def _prepare(data_dir: Path, store_url: str | None) -> tuple[str, str]:
    initialise(data_dir, "local", store_url)
    service = open_service(data_dir)
    try:
        tenant = service.create_tenant("crash")
        principal, _ = service.create_access_key(tenant.account_id)
    finally:
        service.close()
    return tenant.account_id, principal.access_key_id


def _check(data_dir: Path, account: str, access_key_id: str, acks: Acks, sqlite: bool) -> None:
    if sqlite:
        with sqlite3.connect(data_dir / "strongroom.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    service = open_service(data_dir)
    try:
        verify_store_chain(service.store, service.audit.chain)
        access = service.lookup_access_key(access_key_id)
        assert access is not None
        caller = access.caller
        for key_id in acks.keys:
            meta = service.call(caller, "DescribeKey", {"KeyId": key_id})["KeyMetadata"]
            assert meta["KeyState"] == "Enabled"

            def count_versions(tx: StoreTx, k: str = key_id) -> int:
                return tx.count(account, "keyver", k + "/")

            versions = service.kernel.read(count_versions)
            assert versions >= 1 + acks.rotations[key_id], key_id
        for key_id, blob, digest in acks.ciphertexts:
            got = service.call(caller, "Decrypt", {"CiphertextBlob": blob})
            assert got["KeyId"].endswith("/" + key_id)
            assert hashlib.sha256(got["Plaintext"]).hexdigest() == digest
    finally:
        service.close()


def _crash_loop(tmp_path: Path, store_url: str | None, kills: int, max_delay_s: float) -> Acks:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    ack_file = tmp_path / "acks"
    account, access_key_id = _prepare(data_dir, store_url)
    acks = Acks()
    for round_no in range(kills):
        log = tmp_path / f"worker-{round_no}.err"
        with open(log, "wb") as err:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "strongroom.testing.crash_worker",
                    str(data_dir),
                    access_key_id,
                    str(ack_file),
                    str(rng.randrange(2**32)),
                ],
                stdout=subprocess.PIPE,
                stderr=err,
            )
            with worker:  # waits for the worker and closes its pipe whatever happens
                try:
                    assert worker.stdout is not None
                    ready = worker.stdout.readline()
                    assert ready == b"ready\n", log.read_text()
                    time.sleep(rng.uniform(0.0, max_delay_s))  # the random kill moment
                finally:
                    worker.send_signal(signal.SIGKILL)
        assert worker.returncode == -signal.SIGKILL, log.read_text()  # it never failed alone
        drop_torn_line(ack_file)
        acks = read_acks(ack_file)
        _check(data_dir, account, access_key_id, acks, sqlite=store_url is None)
    return acks


def test_sqlite_survives_sigkill(tmp_path: Path) -> None:
    acks = _crash_loop(tmp_path, None, kills=25, max_delay_s=0.4)
    # The schedule must actually have exercised every operation, many times.
    assert len(acks.keys) >= 25
    assert sum(acks.rotations.values()) >= 25
    assert len(acks.ciphertexts) >= 50


def test_postgres_survives_sigkill(tmp_path: Path, postgres_server: TempPostgres) -> None:
    pytest.importorskip("psycopg")
    url = postgres_server.create_database("crash_safety")
    acks = _crash_loop(tmp_path, url, kills=10, max_delay_s=0.4)
    assert len(acks.keys) >= 10
    assert len(acks.ciphertexts) >= 20
