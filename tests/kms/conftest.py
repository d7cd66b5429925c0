"""Key service fixtures: the same domain tests run over every store and root of trust.

``service`` is parametrised over (sqlite, local), (postgres, local) and (sqlite, pkcs11),
each with a :class:`ManualClock` (``clock``) so deletion windows and rotation periods can be
crossed without waiting.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller

_COUNTER = itertools.count()

COMBINATIONS = [("sqlite", "local"), ("postgres", "local"), ("sqlite", "pkcs11")]


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "sqlite":
        return SqliteStore(tmp_path / "store.db")
    from strongroom.store import PostgresStore  # type: ignore[attr-defined]

    server = request.getfixturevalue("postgres_server")
    return PostgresStore(server.create_database(f"kms_{next(_COUNTER)}"))


def _root(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "local":
        return LocalRootOfTrust.create(tmp_path / "master.key")
    from strongroom.rootkey import Pkcs11RootOfTrust  # type: ignore[attr-defined]

    token = request.getfixturevalue("softhsm_token")
    return Pkcs11RootOfTrust.from_uri(token.uri(f"root-{next(_COUNTER)}"), create=True)


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
    svc = KeyService(
        _store(store_kind, tmp_path, request), _root(root_kind, tmp_path, request), clock
    )
    yield svc
    svc.close()


@pytest.fixture
def sqlite_service(tmp_path: Path, clock: ManualClock) -> Iterator[KeyService]:
    """A key service over SQLite and a local root key only (for tests of pure logic)."""
    svc = KeyService(
        SqliteStore(tmp_path / "store.db"), LocalRootOfTrust.create(tmp_path / "master.key"), clock
    )
    yield svc
    svc.close()


@pytest.fixture
def alice(service: KeyService) -> Caller:
    """A caller of tenant ``alice`` on ``service``."""
    return tenant_caller(service, "alice")


@pytest.fixture
def bob(service: KeyService) -> Caller:
    """A caller of tenant ``bob`` on ``service``."""
    return tenant_caller(service, "bob")
