"""The embedded store: one SQLite file in WAL mode with full fsync.

Writers take the database lock up front (``BEGIN IMMEDIATE``), so read-modify-write units
never interleave, across threads or processes. Readers run in WAL snapshots and never wait
for writers. Every connection belongs to one thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from strongroom.errors import StoreError
from strongroom.ports import AuditRecord
from strongroom.ports.audit_chain import GENESIS_HASH, UNKEYED, AuditChain, record_from_row
from strongroom.store.keyrange import prefix_end
from strongroom.store.sqlite_audit import insert_events

T = TypeVar("T")

_ABOVE_ALL_TEXT = b""  # SQLite orders every TEXT value below every BLOB value


def _name_range(prefix: str) -> tuple[str, str | bytes]:
    """``(low, high)`` with "starts with ``prefix``" = ``low <= name < high``."""
    end = prefix_end(prefix)
    return prefix, _ABOVE_ALL_TEXT if end is None else end


MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE records (
            tenant TEXT NOT NULL,
            kind   TEXT NOT NULL,
            name   TEXT NOT NULL,
            value  BLOB NOT NULL,
            PRIMARY KEY (tenant, kind, name)
        ) WITHOUT ROWID;
        CREATE TABLE audit (
            seq       INTEGER PRIMARY KEY,
            body      BLOB NOT NULL,
            prev_hash BLOB NOT NULL,
            hash      BLOB NOT NULL
        );
        """,
    ),
]


class SqliteTx:
    """A :class:`~strongroom.ports.StoreTx` over one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        """Return one record's value, or ``None``."""
        row = self._conn.execute(
            "SELECT value FROM records WHERE tenant=? AND kind=? AND name=?", (tenant, kind, name)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def get_for_update(self, tenant: str, kind: str, name: str) -> bytes | None:
        """Return one record's value; the write transaction already holds the lock."""
        return self.get(tenant, kind, name)

    def insert(self, tenant: str, kind: str, name: str, value: bytes) -> bool:
        """Create a record unless it exists."""
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO records (tenant, kind, name, value) VALUES (?, ?, ?, ?)",
            (tenant, kind, name, value),
        )
        return cur.rowcount == 1

    def insert_many(self, tenant: str, kind: str, items: Sequence[tuple[str, bytes]]) -> int:
        """Create many records, skipping names that exist."""
        before = self._conn.total_changes
        self._conn.executemany(
            "INSERT OR IGNORE INTO records (tenant, kind, name, value) VALUES (?, ?, ?, ?)",
            ((tenant, kind, name, value) for name, value in items),
        )
        return self._conn.total_changes - before

    def get_many(self, tenant: str, kind: str, names: Sequence[str]) -> dict[str, bytes]:
        """The values of those of ``names`` that exist, in one query (names as a JSON array)."""
        if not names:
            return {}
        rows = self._conn.execute(
            "SELECT name, value FROM records WHERE tenant=? AND kind=? "
            "AND name IN (SELECT value FROM json_each(?))",
            (tenant, kind, json.dumps(list(names))),
        )
        return {name: bytes(value) for name, value in rows}

    def put(self, tenant: str, kind: str, name: str, value: bytes) -> None:
        """Create or replace a record."""
        self._conn.execute(
            "INSERT INTO records (tenant, kind, name, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, kind, name) DO UPDATE SET value = excluded.value",
            (tenant, kind, name, value),
        )

    def put_many(self, tenant: str, kind: str, items: Sequence[tuple[str, bytes]]) -> None:
        """Create or replace many records of one kind (for duplicate names, the last wins)."""
        self._conn.executemany(
            "INSERT INTO records (tenant, kind, name, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, kind, name) DO UPDATE SET value = excluded.value",
            ((tenant, kind, name, value) for name, value in items),
        )

    def delete(self, tenant: str, kind: str, name: str) -> bool:
        """Delete a record."""
        cur = self._conn.execute(
            "DELETE FROM records WHERE tenant=? AND kind=? AND name=?", (tenant, kind, name)
        )
        return cur.rowcount == 1

    def delete_prefix(self, tenant: str, kind: str, prefix: str) -> int:
        """Delete every record whose name starts with ``prefix``."""
        cur = self._conn.execute(
            "DELETE FROM records WHERE tenant=? AND kind=? AND name>=? AND name<?",
            (tenant, kind, *_name_range(prefix)),
        )
        return cur.rowcount

    def scan(
        self,
        tenant: str,
        kind: str,
        prefix: str = "",
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, bytes]]:
        """Return records by ascending name."""
        low = prefix if after is None or after < prefix else after
        op = ">=" if after is None or after < prefix else ">"
        rows = self._conn.execute(
            f"SELECT name, value FROM records WHERE tenant=? AND kind=? AND name{op}? "  # noqa: S608 - op is one of two literals
            "AND name<? ORDER BY name LIMIT ?",
            (tenant, kind, low, _name_range(prefix)[1], -1 if limit is None else limit),
        ).fetchall()
        return [(str(name), bytes(value)) for name, value in rows]

    def count(self, tenant: str, kind: str, prefix: str = "") -> int:
        """Count records whose name starts with ``prefix``."""
        row = self._conn.execute(
            "SELECT count(*) FROM records WHERE tenant=? AND kind=? AND name>=? AND name<?",
            (tenant, kind, *_name_range(prefix)),
        ).fetchone()
        return int(row[0])

    def tenants(self) -> list[str]:
        """Return every tenant with a record."""
        rows = self._conn.execute("SELECT DISTINCT tenant FROM records ORDER BY tenant")
        return [str(r[0]) for r in rows]

    def kinds(self, tenant: str) -> list[str]:
        """Return every kind with a record of ``tenant`` (a skip scan: one probe per kind)."""
        rows = self._conn.execute(
            "WITH RECURSIVE k (kind) AS ("
            " SELECT (SELECT kind FROM records WHERE tenant=? ORDER BY kind LIMIT 1)"
            " UNION ALL"
            " SELECT (SELECT r.kind FROM records r WHERE r.tenant=? AND r.kind > k.kind"
            "         ORDER BY r.kind LIMIT 1)"
            " FROM k WHERE k.kind IS NOT NULL"
            ") SELECT kind FROM k WHERE kind IS NOT NULL",
            (tenant, tenant),
        )
        return [str(r[0]) for r in rows]

    def append_audit(
        self, bodies: Sequence[bytes], chain: AuditChain = UNKEYED
    ) -> list[AuditRecord]:
        """Append events to the chain (the write lock serialises appenders)."""
        if not bodies:
            return []
        first, prev, hashes = self._insert_audit(bodies, chain)
        prevs = [prev, *hashes[:-1]]
        return list(map(AuditRecord, range(first, first + len(hashes)), bodies, prevs, hashes))

    def append_audit_head(
        self, bodies: Sequence[bytes], chain: AuditChain = UNKEYED
    ) -> AuditRecord | None:
        """:meth:`append_audit`, returning only the newest event (``None`` if no bodies)."""
        if not bodies:
            return None
        first, prev, hashes = self._insert_audit(bodies, chain)
        before = hashes[-2] if len(hashes) > 1 else prev
        return AuditRecord(first + len(hashes) - 1, bodies[-1], before, hashes[-1])

    def _insert_audit(
        self, bodies: Sequence[bytes], chain: AuditChain
    ) -> tuple[int, bytes, list[bytes]]:
        """Insert events after the head: ``(first seq, the head's hash, the new hashes)``."""
        row = self._conn.execute(
            "SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            seq, prev = 0, GENESIS_HASH
        else:
            head = record_from_row(row, 0)
            seq, prev = head.seq, head.hash
        hashes = chain.links(prev, seq, bodies)
        insert_events(self._conn, seq + 1, prev, hashes, bodies)
        return seq + 1, prev, hashes

    def read_audit(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Return audit records after ``after_seq``."""
        rows = self._conn.execute(
            "SELECT seq, body, prev_hash, hash FROM audit WHERE seq>? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        out: list[AuditRecord] = []
        for row in rows:  # checked row by row: a damaged row is named, never a TypeError
            out.append(record_from_row(row, out[-1].seq if out else after_seq))
        return out


class SqliteStore:
    """A :class:`~strongroom.ports.Store` in one SQLite file (WAL, ``synchronous=FULL``)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0) -> None:
        self.path = str(path)
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self._timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            except sqlite3.Error as exc:
                raise StoreError("cannot open the key store") from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version not in done:
                    for statement in sql.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        """Return the highest applied migration."""
        row = self._connect().execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _run(self, fn: Callable[[SqliteTx], T], begin: str) -> T:
        conn = self._connect()
        try:
            conn.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError("the key store is busy or unavailable") from exc
        try:
            result = fn(SqliteTx(conn))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError("the key store could not commit") from exc
        return result

    def read(self, fn: Callable[[SqliteTx], T]) -> T:
        """Run ``fn`` in a snapshot-consistent read transaction."""
        return self._run(fn, "BEGIN DEFERRED")

    def write(self, fn: Callable[[SqliteTx], T]) -> T:
        """Run ``fn`` holding the write lock; commit durably."""
        return self._run(fn, "BEGIN IMMEDIATE")

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
