"""The scale-out store: PostgreSQL, shared by any number of Strongroom processes.

Isolation. Write units run at ``SERIALIZABLE``: whatever ``fn`` reads and writes behaves as
if the units ran one after another, exactly like the SQLite store (whose writers hold one
lock), so the key service core is correct on both without knowing which it has, even when
it reads a record with plain :meth:`~PostgresTx.get` and writes it back. PostgreSQL
reports a would-be anomaly as a serialisation failure (SQLSTATE 40001) or a deadlock
(40P01); :meth:`PostgresStore.write` then rolls back and runs ``fn`` again after a short
random pause, until ``retry_timeout_s`` has passed. :meth:`~PostgresTx.get_for_update`
adds ``SELECT ... FOR UPDATE``, so rivals for one record queue on its row lock instead of
all doing their work before one of them loses. Read units run ``REPEATABLE READ READ
ONLY``: one consistent snapshot, never blocked, never retried.

Audit chain. The newest ``(seq, hash)`` lives in the one-row table ``audit_head``; an
appender locks that row, so appenders in any number of processes take turns and the chain
never forks (``audit.seq`` is also the primary key, a second guard). A unit that lost the
race for the head once is retried with ``LOCK TABLE audit_head`` as its first statement,
which PostgreSQL grants before the unit's snapshot is taken, so it cannot lose again.

Connections come from a :class:`ConnectionPool`. A lost connection surfaces as
:class:`~strongroom.errors.StoreError` and the next call connects anew.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from strongroom.store.postgres_pool import Connection, ConnectionPool
from strongroom.store.postgres_schema import migrate
from strongroom.store.postgres_tx import PostgresTx, is_conflict, store_error

T = TypeVar("T")

_BACKOFF_CAP_S = 0.05


class PostgresStore:
    """A :class:`~strongroom.ports.Store` in one PostgreSQL database.

    ``dsn`` is a libpq connection string or URL (``postgresql://user@host:5432/db``).
    Opening applies missing schema migrations. Safe to share between threads (up to
    ``pool_size`` units run at once; more wait up to ``checkout_timeout_s``) and between
    processes and hosts over the same database.
    """

    def __init__(
        self,
        dsn: str,
        pool_size: int = 8,
        retry_timeout_s: float = 30.0,
        checkout_timeout_s: float = 30.0,
        connect_timeout_s: int = 10,
    ) -> None:
        self._pool = ConnectionPool(dsn, pool_size, checkout_timeout_s, connect_timeout_s)
        self._retry_timeout = retry_timeout_s
        conn = self._pool.connect()
        try:
            self._version = migrate(conn)
        except psycopg.Error as exc:
            raise store_error(exc) from exc
        finally:
            conn.close()

    def __repr__(self) -> str:
        return "PostgresStore(<dsn hidden>)"

    def schema_version(self) -> int:
        """Return the schema version this store brought the database to."""
        return self._version

    def read(self, fn: Callable[[PostgresTx], T]) -> T:
        """Run ``fn`` in a read-only snapshot (``REPEATABLE READ READ ONLY``)."""
        return self._run(fn, write=False)

    def write(self, fn: Callable[[PostgresTx], T]) -> T:
        """Run ``fn`` in a ``SERIALIZABLE`` transaction; on a conflict, run it again."""
        return self._run(fn, write=True)

    def _run(self, fn: Callable[[PostgresTx], T], write: bool) -> T:
        deadline = time.monotonic() + self._retry_timeout
        attempt, lock_audit, reconnected, pause = 0, False, False, 0.0
        while True:
            if pause:
                time.sleep(pause)
            attempt += 1
            conn = self._pool.acquire()
            tx, began = PostgresTx(conn, read_only=not write), False
            try:
                if write:
                    conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                    began = True
                    if lock_audit:  # before any snapshot: see the class docstring
                        conn.execute("LOCK TABLE audit_head IN EXCLUSIVE MODE")
                else:
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    began = True
                result = fn(tx)
                if tx.failed is not None:  # fn swallowed a store error: do not commit
                    raise tx.failed
                conn.execute("COMMIT")
                return result
            except BaseException as exc:
                _rollback(conn)
                if not began and conn.broken and not reconnected:
                    reconnected = True  # a pooled connection died while idle: nothing ran
                    continue
                if write and (tx.conflict or is_conflict(exc)) and time.monotonic() < deadline:
                    lock_audit = lock_audit or tx.audit_conflict
                    pause = random.uniform(0, _BACKOFF_CAP_S * 2 ** min(attempt - 6, 0))  # noqa: S311 - jitter, not a secret
                    continue
                if isinstance(exc, psycopg.Error):
                    raise store_error(exc) from exc
                raise
            finally:
                self._pool.release(conn)

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()


def _rollback(conn: Connection) -> None:
    """Roll back whatever is open on ``conn``; a dead connection has nothing to roll back."""
    if conn.closed or conn.broken:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        conn.close()
