"""One transaction over the PostgreSQL key store: the store port's operations in SQL.

:class:`PostgresTx` is what a unit of work gets from
:class:`~strongroom.store.postgres.PostgresStore`: reads and writes of records addressed
by ``(tenant, kind, name)``, range scans, and appends to the audit chain (the head row
locked, see the store's docstring). It notes a serialisation conflict rather than raising
past the unit, so the store can retry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from strongroom.errors import StoreError
from strongroom.ports import AuditRecord
from strongroom.ports.audit_chain import UNKEYED, AuditChain, record_from_row
from strongroom.store.keyrange import prefix_end
from strongroom.store.postgres_pool import Connection

_CONFLICTS = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_SHUTDOWNS = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, cannot connect now
_COPY_THRESHOLD = 2000  # insert_many batches from this size go through COPY
_BACKOFF_CAP_S = 0.05


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a serialisation failure or a deadlock (the unit may be retried)."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate in _CONFLICTS


def store_error(exc: psycopg.Error) -> StoreError:
    """A client-safe error for ``exc``; the detail stays in ``__cause__`` for the log."""
    if is_conflict(exc):
        return StoreError("the key store was busy with a conflicting change; retry")
    state = exc.sqlstate
    if state is None and isinstance(exc, psycopg.OperationalError):
        return StoreError("lost the connection to the PostgreSQL key store")
    if state is not None and (state in _SHUTDOWNS or state.startswith("08")):  # 08: connection
        return StoreError("lost the connection to the PostgreSQL key store")
    return StoreError(f"the PostgreSQL key store failed (SQLSTATE {exc.sqlstate or 'none'})")


class PostgresTx:
    """A :class:`~strongroom.ports.StoreTx` over one PostgreSQL transaction."""

    def __init__(self, conn: Connection, read_only: bool = False) -> None:
        self._conn = conn
        self._read_only = read_only
        self.failed: StoreError | None = None
        self.conflict = False
        self.audit_conflict = False

    def _exec(
        self, query: Any, params: Sequence[object] | Mapping[str, object] = ()
    ) -> psycopg.Cursor[Any]:
        if self.failed is not None:  # the server has aborted this transaction already
            raise self.failed
        try:
            return self._conn.execute(query, params)
        except psycopg.Error as exc:
            self.failed = store_error(exc)
            self.conflict = is_conflict(exc)
            raise self.failed from exc

    def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        """Return one record's value, or ``None``."""
        row = self._exec(
            "SELECT value FROM records WHERE tenant = %s AND kind = %s AND name = %s",
            (tenant, kind, name),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def get_for_update(self, tenant: str, kind: str, name: str) -> bytes | None:
        """Return one record's value and hold its row lock until the unit ends.

        A record that does not exist is not locked, but a rival that creates it meanwhile
        still makes one of the two units fail and run again (serialisable isolation). In a
        read-only unit there is nothing to protect, and this is :meth:`get`.
        """
        if self._read_only:
            return self.get(tenant, kind, name)
        row = self._exec(
            "SELECT value FROM records WHERE tenant = %s AND kind = %s AND name = %s FOR UPDATE",
            (tenant, kind, name),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def insert(self, tenant: str, kind: str, name: str, value: bytes) -> bool:
        """Create a record unless it exists."""
        cur = self._exec(
            "INSERT INTO records (tenant, kind, name, value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (tenant, kind, name, value),
        )
        return cur.rowcount == 1

    def insert_many(self, tenant: str, kind: str, items: Sequence[tuple[str, bytes]]) -> int:
        """Create many records, skipping names that exist (the first of duplicates wins).

        Small batches go in one ``INSERT ... SELECT FROM unnest(...)``; large ones are
        streamed with ``COPY`` into a session-private temporary table, then inserted in
        name order (kind to the index) with ``ON CONFLICT DO NOTHING``.
        """
        if not items:
            return 0
        if len(items) < _COPY_THRESHOLD:
            names = [name for name, _ in items]
            values = [value for _, value in items]
            cur = self._exec(
                "INSERT INTO records (tenant, kind, name, value) "
                "SELECT %s, %s, n, v FROM unnest(%s::text[], %b::bytea[]) "
                "WITH ORDINALITY AS batch (n, v, i) ORDER BY i "
                "ON CONFLICT DO NOTHING",
                (tenant, kind, names, values),
            )
            return cur.rowcount
        self._exec(
            "CREATE TEMPORARY TABLE IF NOT EXISTS strongroom_batch "
            '(i BIGINT NOT NULL, name TEXT COLLATE "C" NOT NULL, value BYTEA NOT NULL) '
            "ON COMMIT DROP"
        )
        self._exec("TRUNCATE strongroom_batch")
        self._copy_batch(items)
        cur = self._exec(
            "INSERT INTO records (tenant, kind, name, value) "
            "SELECT DISTINCT ON (name) %s, %s, name, value FROM strongroom_batch "
            "ORDER BY name, i ON CONFLICT DO NOTHING",
            (tenant, kind),
        )
        return cur.rowcount

    def _copy_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        if self.failed is not None:
            raise self.failed
        try:
            with (
                self._conn.cursor() as cur,
                cur.copy(
                    "COPY strongroom_batch (i, name, value) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["int8", "text", "bytea"])
                for i, (name, value) in enumerate(items):
                    copy.write_row((i, name, value))
        except psycopg.Error as exc:
            self.failed = store_error(exc)
            raise self.failed from exc

    def get_many(self, tenant: str, kind: str, names: Sequence[str]) -> dict[str, bytes]:
        """The values of those of ``names`` that exist, in one query."""
        if not names:
            return {}
        rows = self._exec(
            "SELECT name, value FROM records WHERE tenant = %s AND kind = %s "
            "AND name = ANY(%s::text[])",
            (tenant, kind, list(names)),
        ).fetchall()
        return {name: bytes(value) for name, value in rows}

    def put(self, tenant: str, kind: str, name: str, value: bytes) -> None:
        """Create or replace a record."""
        self._exec(
            "INSERT INTO records (tenant, kind, name, value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (tenant, kind, name) DO UPDATE SET value = excluded.value",
            (tenant, kind, name, value),
        )

    def put_many(self, tenant: str, kind: str, items: Sequence[tuple[str, bytes]]) -> None:
        """Create or replace many records of one kind in one statement (last duplicate wins)."""
        latest = dict(items)  # one row per name: ON CONFLICT cannot touch a row twice
        if not latest:
            return
        self._exec(
            "INSERT INTO records (tenant, kind, name, value) "
            "SELECT %s, %s, n, v FROM unnest(%s::text[], %b::bytea[]) AS u(n, v) "
            "ON CONFLICT (tenant, kind, name) DO UPDATE SET value = excluded.value",
            (tenant, kind, list(latest), list(latest.values())),
        )

    def delete(self, tenant: str, kind: str, name: str) -> bool:
        """Delete a record."""
        cur = self._exec(
            "DELETE FROM records WHERE tenant = %s AND kind = %s AND name = %s",
            (tenant, kind, name),
        )
        return cur.rowcount == 1

    @staticmethod
    def _range(prefix: str, after: str | None) -> tuple[sql.Composable, list[str]]:
        """The ``name`` condition for "starts with ``prefix``, above ``after``"."""
        if after is not None and after >= prefix:
            parts, params = [sql.SQL("name > %s")], [after]
        else:
            parts, params = [sql.SQL("name >= %s")], [prefix]
        end = prefix_end(prefix)
        if end is not None:
            parts.append(sql.SQL("name < %s"))
            params.append(end)
        return sql.SQL(" AND ").join(parts), params

    def delete_prefix(self, tenant: str, kind: str, prefix: str) -> int:
        """Delete every record whose name starts with ``prefix``."""
        cond, params = self._range(prefix, None)
        query = sql.SQL("DELETE FROM records WHERE tenant = %s AND kind = %s AND {}").format(cond)
        return self._exec(query, [tenant, kind, *params]).rowcount

    def scan(
        self,
        tenant: str,
        kind: str,
        prefix: str = "",
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, bytes]]:
        """Return records by ascending name (byte order)."""
        cond, params = self._range(prefix, after)
        query = sql.SQL(
            "SELECT name, value FROM records WHERE tenant = %s AND kind = %s AND {} "
            "ORDER BY name LIMIT %s"
        ).format(cond)
        rows = self._exec(query, [tenant, kind, *params, limit]).fetchall()
        return [(str(name), bytes(value)) for name, value in rows]

    def count(self, tenant: str, kind: str, prefix: str = "") -> int:
        """Count records whose name starts with ``prefix``."""
        cond, params = self._range(prefix, None)
        query = sql.SQL(
            "SELECT count(*) FROM records WHERE tenant = %s AND kind = %s AND {}"
        ).format(cond)
        row = self._exec(query, [tenant, kind, *params]).fetchone()
        return 0 if row is None else int(row[0])

    def tenants(self) -> list[str]:
        """Return every tenant with a record (a skip scan: one index probe per tenant)."""
        rows = self._exec(
            "WITH RECURSIVE t (tenant) AS ("
            " (SELECT tenant FROM records ORDER BY tenant LIMIT 1)"
            " UNION ALL"
            " SELECT (SELECT r.tenant FROM records r WHERE r.tenant > t.tenant"
            "         ORDER BY r.tenant LIMIT 1)"
            " FROM t WHERE t.tenant IS NOT NULL"
            ") SELECT tenant FROM t WHERE tenant IS NOT NULL"
        ).fetchall()
        return [str(row[0]) for row in rows]

    def kinds(self, tenant: str) -> list[str]:
        """Return every kind with a record of ``tenant`` (a skip scan: one probe per kind)."""
        rows = self._exec(
            "WITH RECURSIVE k (kind) AS ("
            " SELECT (SELECT kind FROM records WHERE tenant = %s ORDER BY kind LIMIT 1)"
            " UNION ALL"
            " SELECT (SELECT r.kind FROM records r WHERE r.tenant = %s AND r.kind > k.kind"
            "         ORDER BY r.kind LIMIT 1)"
            " FROM k WHERE k.kind IS NOT NULL"
            ") SELECT kind FROM k WHERE kind IS NOT NULL",
            (tenant, tenant),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def append_audit(
        self, bodies: Sequence[bytes], chain: AuditChain = UNKEYED
    ) -> list[AuditRecord]:
        """Append events after the locked chain head."""
        if not bodies:
            return []
        first, prev, hashes = self._insert_audit(bodies, chain)
        prevs = [prev, *hashes[:-1]]
        seqs = range(first, first + len(hashes))
        return list(map(AuditRecord, seqs, map(bytes, bodies), prevs, hashes))

    def append_audit_head(
        self, bodies: Sequence[bytes], chain: AuditChain = UNKEYED
    ) -> AuditRecord | None:
        """:meth:`append_audit`, returning only the newest event (``None`` if no bodies)."""
        if not bodies:
            return None
        first, prev, hashes = self._insert_audit(bodies, chain)
        before = hashes[-2] if len(hashes) > 1 else prev
        return AuditRecord(first + len(hashes) - 1, bytes(bodies[-1]), before, hashes[-1])

    def _insert_audit(
        self, bodies: Sequence[bytes], chain: AuditChain
    ) -> tuple[int, bytes, list[bytes]]:
        """Insert events after the locked head: ``(first seq, the head's hash, new hashes)``."""
        try:
            row = self._exec("SELECT seq, hash FROM audit_head WHERE one FOR UPDATE").fetchone()
        except StoreError:
            self.audit_conflict = self.conflict
            raise
        if row is None:
            raise StoreError("the audit chain head is missing")
        if isinstance(row[0], bool) or not isinstance(row[0], int):
            raise StoreError("the audit chain head is malformed")
        seq, prev = int(row[0]), bytes(row[1])
        hashes = chain.links(prev, seq, bodies)
        self._exec(
            "INSERT INTO audit (seq, body, prev_hash, hash) "
            # binary parameters (%b): bytea arrays as text cost ~13 µs of client CPU per
            # event in escaping; in binary ~1 µs. The hashes go end to end in one bytea,
            # the head's first (row k's prev_hash is hash k - 1): no array of them to send
            "SELECT %(seq)b::bigint + n, body, "
            "substring(%(hashes)b::bytea FROM 32 * n::int - 31 FOR 32), "
            "substring(%(hashes)b::bytea FROM 32 * n::int + 1 FOR 32) "
            "FROM unnest(%(bodies)b::bytea[]) WITH ORDINALITY AS batch (body, n)",
            {"seq": seq, "hashes": b"".join((prev, *hashes)), "bodies": list(bodies)},
        )
        self._exec(
            "UPDATE audit_head SET seq = %s, hash = %s WHERE one", (seq + len(hashes), hashes[-1])
        )
        return seq + 1, prev, hashes

    def read_audit(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Return audit records after ``after_seq``."""
        rows = self._exec(
            "SELECT seq, body, prev_hash, hash FROM audit WHERE seq > %s ORDER BY seq LIMIT %s",
            (after_seq, limit),
        ).fetchall()
        out: list[AuditRecord] = []
        for row in rows:  # checked row by row: a damaged row is named, never a TypeError
            out.append(record_from_row(row, out[-1].seq if out else after_seq))
        return out
