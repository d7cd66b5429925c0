"""What only the PostgreSQL store has: migrations, retries, lost connections, the pool."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from strongroom.errors import DependencyTimeoutError, StoreError
from strongroom.kms.audit import verify_chain
from strongroom.store import PostgresStore
from strongroom.store.postgres_schema import LATEST_VERSION, MIGRATIONS

_COUNTER = itertools.count()


@pytest.fixture
def dsn(postgres_server: Any) -> str:
    return str(postgres_server.create_database(f"pg_{os.getpid()}_{next(_COUNTER)}"))


@pytest.fixture
def store(dsn: str) -> Iterator[PostgresStore]:
    s = PostgresStore(dsn)
    yield s
    s.close()


def _migrations(dsn: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        return [(int(v), str(n)) for v, n in rows]


def test_migrations_are_recorded_once(dsn: str) -> None:
    PostgresStore(dsn).close()
    again = PostgresStore(dsn)
    assert again.schema_version() == LATEST_VERSION
    again.close()
    assert _migrations(dsn) == [(m.version, m.name) for m in MIGRATIONS]
    with psycopg.connect(dsn) as conn:
        collations = conn.execute(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_name = 'records' AND data_type = 'text' ORDER BY column_name"
        ).fetchall()
    assert collations == [("kind", "C"), ("name", "C"), ("tenant", "C")]


def test_a_schema_from_a_newer_release_is_refused(dsn: str) -> None:
    PostgresStore(dsn).close()
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    with pytest.raises(StoreError, match="newer"):
        PostgresStore(dsn)


OPENER = """
import sys
from strongroom.store import PostgresStore
sys.stdin.read(1)
store = PostgresStore(sys.argv[1])
store.write(lambda tx: tx.append_audit([b"opened"]))
store.close()
"""


def test_replicas_starting_together_migrate_once(dsn: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, dsn],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"g")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert _migrations(dsn) == [(m.version, m.name) for m in MIGRATIONS]
    store = PostgresStore(dsn)
    assert verify_chain(store.read(lambda tx: tx.read_audit()))[0] == 4
    store.close()


def _kill_other_backends(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_a_lost_connection_is_a_store_error_and_the_next_call_reconnects(
    store: PostgresStore, dsn: str
) -> None:
    store.write(lambda tx: tx.put("t", "k", "x", b"1"))

    def fn(tx: Any) -> Any:
        assert _kill_other_backends(dsn) >= 1
        return tx.get("t", "k", "x")

    with pytest.raises(StoreError, match="lost the connection"):
        store.write(fn)
    assert store.read(lambda tx: tx.get("t", "k", "x")) == b"1"


def test_idle_connections_killed_between_calls_are_replaced(store: PostgresStore, dsn: str) -> None:
    store.write(lambda tx: tx.put("t", "k", "x", b"1"))
    assert _kill_other_backends(dsn) >= 1
    # Nothing had run on the dead connection, so the store reconnects without an error.
    assert store.read(lambda tx: tx.get("t", "k", "x")) == b"1"
    assert store.write(lambda tx: tx.insert("t", "k", "y", b"2")) is True


def _race(store: PostgresStore) -> tuple[list[BaseException], list[int]]:
    """Unit B reads x, then unit A commits a change to x, then B writes x: B must rerun."""
    a_locked, b_read = threading.Event(), threading.Event()
    attempts: list[int] = []
    errors: list[BaseException] = []

    def unit_a(tx: Any) -> None:
        tx.get_for_update("t", "k", "x")
        tx.put("t", "k", "x", b"A")
        a_locked.set()
        assert b_read.wait(30)

    def unit_b(tx: Any) -> None:
        attempts.append(len(attempts) + 1)
        assert a_locked.wait(30)
        seen = tx.get("t", "k", "x")
        b_read.set()
        tx.put("t", "k", "x", seen + b"B")

    def run_b() -> None:
        try:
            store.write(unit_b)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run_b)
    thread.start()
    store.write(unit_a)
    thread.join()
    return errors, attempts


def test_a_serialisation_conflict_reruns_the_unit(store: PostgresStore) -> None:
    store.write(lambda tx: tx.put("t", "k", "x", b"0"))
    errors, attempts = _race(store)
    assert errors == []
    assert attempts == [1, 2]
    assert store.read(lambda tx: tx.get("t", "k", "x")) == b"AB"


def test_retries_stop_at_the_retry_timeout(dsn: str) -> None:
    store = PostgresStore(dsn, retry_timeout_s=0)
    store.write(lambda tx: tx.put("t", "k", "x", b"0"))
    errors, attempts = _race(store)
    assert attempts == [1]
    assert len(errors) == 1
    assert isinstance(errors[0], StoreError)
    assert store.read(lambda tx: tx.get("t", "k", "x")) == b"A"
    store.close()


def test_read_units_cannot_write(store: PostgresStore) -> None:
    with pytest.raises(StoreError):
        store.read(lambda tx: tx.put("t", "k", "x", b"1"))
    assert store.read(lambda tx: tx.get_for_update("t", "k", "x")) is None
    assert store.read(lambda tx: tx.tenants()) == []


def test_a_swallowed_store_error_still_rolls_back(store: PostgresStore) -> None:
    def fn(tx: Any) -> str:
        tx.put("t", "k", "kept?", b"1")
        with contextlib.suppress(StoreError):
            tx.put("t", "k", "nul\x00name", b"")  # PostgreSQL text cannot hold NUL
        return "done"

    with pytest.raises(StoreError):
        store.write(fn)
    assert store.read(lambda tx: tx.count("t", "k")) == 0


def test_a_full_pool_times_out_as_a_dependency_timeout(dsn: str) -> None:
    store = PostgresStore(dsn, pool_size=1, checkout_timeout_s=0.2)

    def nested(tx: Any) -> None:
        tx.put("t", "k", "x", b"1")
        with pytest.raises(DependencyTimeoutError):
            store.read(lambda inner: inner.get("t", "k", "x"))

    store.write(nested)
    assert store.read(lambda tx: tx.get("t", "k", "x")) == b"1"
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.read(lambda tx: tx.tenants())


def test_repr_hides_the_connection_string(postgres_server: Any) -> None:
    dsn = postgres_server.create_database(f"repr_{os.getpid()}_{next(_COUNTER)}")
    store = PostgresStore(dsn.replace("postgres@", "postgres:hunter2@"))
    assert "hunter2" not in repr(store)
    assert "127.0.0.1" not in repr(store)
    store.close()


def test_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout_s=2)


def test_temp_postgres_database_names_are_checked(postgres_server: Any) -> None:
    assert postgres_server.dsn.startswith("postgresql://postgres@127.0.0.1:")
    with pytest.raises(StoreError):
        postgres_server.create_database('x"; DROP DATABASE postgres; --')


def test_a_value_postgres_cannot_hold_is_a_store_error_not_a_lost_connection(
    store: PostgresStore,
) -> None:
    with pytest.raises(StoreError) as info:
        store.write(lambda tx: tx.put("t", "k", "nul\x00name", b""))
    assert "lost" not in str(info.value)
    assert store.read(lambda tx: tx.count("t", "k")) == 0
