"""Key service fixtures: the same domain tests run over every store and root of trust.

``service`` is parametrised over (sqlite, local), (postgres, local) and (sqlite, pkcs11),
each with a :class:`ManualClock` (``clock``) so deletion windows and rotation periods can be
crossed without waiting. ``two_processes`` is two key services over one store (SQLite or
PostgreSQL), as two server processes, for what one sees of the other's changes.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.kms import KeyService, ManualClock
from strongroom.kms.authz import Authorizer, DenyAll, KeyAuthorizer
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import sqlite_key_service

_COUNTER = itertools.count()

AUTHORIZER_VARIABLE = "STRONGROOM_TEST_AUTHORIZER"
"""Set by tests/kms/test_authorizer.py to run these tests with a weakened authoriser."""


def authorizer_under_test() -> Authorizer:
    """The authoriser the fixtures give the kernel: the standard one unless overridden.

    ``deny-all`` refuses everything; ``no-grants`` is the standard one without grants.
    test_authorizer.py runs the tenancy, policy and grant tests with each and expects
    them to fail: no operation reaches a key without asking the authoriser.
    """
    kind = os.environ.get(AUTHORIZER_VARIABLE, "standard")
    if kind == "deny-all":
        return DenyAll()
    if kind == "no-grants":
        return KeyAuthorizer(use_grants=False)
    return KeyAuthorizer()


COMBINATIONS = [("sqlite", "local"), ("postgres", "local"), ("sqlite", "pkcs11")]


class PostgresDatabases:
    """Databases of the session's PostgreSQL server, emptied and reused between tests.

    ``CREATE DATABASE`` copies a template (about 0.5 s and 7 MB each, and the files must be
    removed at the end), so each test takes a free database instead and gives it back with
    its schema dropped: the next ``PostgresStore`` migrates it from scratch.
    """

    def __init__(self, server: Any) -> None:
        self._server = server
        self._free: list[str] = []

    def take(self) -> str:
        """Return the DSN of an empty database."""
        return (
            self._free.pop()
            if self._free
            else self._server.create_database(f"kms_{next(_COUNTER)}")
        )

    def give_back(self, dsn: str) -> None:
        """Empty the database (every table, any migration) and keep it for the next test."""
        import psycopg

        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '5s'")
                conn.execute("DROP SCHEMA public CASCADE")
                conn.execute("CREATE SCHEMA public")
        except psycopg.Error:
            return  # still in use by a leaked connection: never hand it out again
        self._free.append(dsn)


@pytest.fixture(scope="session")
def postgres_databases(postgres_server: Any) -> PostgresDatabases:
    """Reusable empty databases on the session's PostgreSQL server."""
    return PostgresDatabases(postgres_server)


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Any, str | None]:
    if kind == "sqlite":
        return SqliteStore(tmp_path / "store.db"), None
    from strongroom.store import PostgresStore

    dsn = request.getfixturevalue("postgres_databases").take()
    return PostgresStore(dsn), dsn


def _root(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "local":
        return LocalRootOfTrust.create(tmp_path / "master.key")
    from strongroom.rootkey import Pkcs11RootOfTrust

    token = request.getfixturevalue("softhsm_token")
    # One HSM key for every test (each has its own store): generating one per test is slow.
    return Pkcs11RootOfTrust.from_uri(token.uri("kms-root"), create=True)


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves by hand."""
    return ManualClock()


@pytest.fixture(params=COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def service(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[KeyService]:
    """A key service over one store and root of trust combination."""
    store_kind, root_kind = request.param
    store, dsn = _store(store_kind, tmp_path, request)
    svc = KeyService(
        store, _root(root_kind, tmp_path, request), clock, authorizer=authorizer_under_test()
    )
    yield svc
    svc.close()
    if dsn is not None:
        request.getfixturevalue("postgres_databases").give_back(dsn)


@pytest.fixture
def sqlite_service(tmp_path: Path, clock: ManualClock) -> Iterator[KeyService]:
    """A key service over SQLite and a local root key only (for tests of pure logic)."""
    with sqlite_key_service(tmp_path, clock, authorizer=authorizer_under_test()) as svc:
        yield svc


@pytest.fixture(params=["sqlite", "postgres"])
def two_processes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[KeyService, KeyService, ManualClock]]:
    """Two key services over one store (as two server processes), sharing a manual clock."""
    clock = ManualClock()
    LocalRootOfTrust.create(tmp_path / "master.key")
    databases = request.getfixturevalue("postgres_databases") if request.param != "sqlite" else None
    dsn = databases.take() if databases is not None else None

    def open_one() -> KeyService:
        root = LocalRootOfTrust.load(tmp_path / "master.key")
        if dsn is None:
            return KeyService(SqliteStore(tmp_path / "s.db"), root, clock)
        from strongroom.store import PostgresStore

        return KeyService(PostgresStore(dsn), root, clock)

    first, second = open_one(), open_one()
    yield first, second, clock
    first.close()
    second.close()
    if databases is not None and dsn is not None:
        databases.give_back(dsn)
