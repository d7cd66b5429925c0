"""The PostgreSQL schema of the key store, as numbered migrations, and the runner that applies them.

Each migration runs once, in its own transaction together with the row in
``schema_migrations`` that records it. The runner holds a transaction-scoped advisory lock
(:data:`MIGRATION_LOCK`) while it looks and applies, so replicas that start at the same
moment take turns: the first applies what is missing, the others find it done.
Migrations are append-only: never edit one that has shipped, add the next number.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from strongroom.errors import StoreError

MIGRATION_LOCK = 0x5354_524F_4E47  # "STRONG": the advisory lock key of the migration runner


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its number, a short name for ``schema_migrations`` and its SQL."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "records and audit chain",
        """
        CREATE TABLE records (
            tenant TEXT COLLATE "C" NOT NULL,
            kind   TEXT COLLATE "C" NOT NULL,
            name   TEXT COLLATE "C" NOT NULL,
            value  BYTEA NOT NULL,
            PRIMARY KEY (tenant, kind, name)
        );
        CREATE TABLE audit (
            seq       BIGINT PRIMARY KEY CHECK (seq > 0),
            body      BYTEA NOT NULL,
            prev_hash BYTEA NOT NULL,
            hash      BYTEA NOT NULL
        );
        CREATE TABLE audit_head (
            one  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
            seq  BIGINT NOT NULL,
            hash BYTEA NOT NULL
        );
        INSERT INTO audit_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));
        """,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def migrate(conn: psycopg.Connection[TupleRow]) -> int:
    """Apply every missing migration on ``conn`` (an autocommit connection); return the version.

    Raises :class:`StoreError` if the database was migrated by a newer Strongroom.
    """
    conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}
        if done and max(done) > LATEST_VERSION:
            raise StoreError(
                f"the key store schema is at version {max(done)}, newer than this "
                f"Strongroom understands ({LATEST_VERSION}): upgrade Strongroom"
            )
        for migration in MIGRATIONS:
            if migration.version not in done:
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
        conn.execute("COMMIT")
    except BaseException:
        if not conn.broken:
            conn.execute("ROLLBACK")
        raise
    return LATEST_VERSION
