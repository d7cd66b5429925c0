"""Shared fixtures: throwaway PostgreSQL server and SoftHSM token, started by the tests; a
key service over SQLite with callers of tenants ``alice`` and ``bob`` (tests/kms overrides
``service`` with every store and root of trust); a ``strongroom server`` per test module
(``kms_server``) with a symmetric key of its admin tenant (``kms_key_arn``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from strongroom.kms import Caller, KeyService
    from strongroom.testing.server import ServerInfo

# CI shares two cores with servers the tests start: wall-clock deadlines would make
# property tests flaky without finding anything; example counts stay at the default.
settings.register_profile("strongroom", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("strongroom")


# The longest test files (seconds, `--durations` of a whole run), longest first. pytest-xdist
# workers (scripts/test.sh: --dist loadfile --no-loadscope-reorder) are handed whole files in
# collection order: starting these first leaves short files for the end, so both workers
# finish together. A file missing here only runs in its usual place.
LONG_FILES_FIRST = (
    "tests/kms/test_user_keys.py",
    "tests/cli/test_cli_flow.py",
    "tests/kms/test_authorizer.py",
    "tests/mesh/test_agent_endpoint.py",
    "tests/e2e/test_readme.py",
    "tests/audittrail/test_fail_closed.py",
    "tests/kms/test_import_rotation_model.py",
    "tests/cli/test_fast_start.py",
    "tests/kms/test_crash_safety.py",
    "tests/store/test_store_contract.py",
    "tests/cli/test_keystore_backup_restore.py",
    "tests/kms/test_symmetric.py",
    "tests/server/test_server_cli.py",
    "tests/backup/test_crash.py",
    "tests/volume/test_token_versions.py",
    "tests/data/test_objects.py",
    "tests/kms/test_import.py",
    "tests/volume/test_volume_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests (a million rows, crash loops) run untraced when coverage is on (``--cov``).

    They load what the fast tests already cover, and tracing would double their CPU time.
    In a pytest-xdist worker the longest files come first (:data:`LONG_FILES_FIRST`); every
    worker sorts the same way, so their collections stay identical.
    """
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.no_cover)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
        items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Run a ``no_cover`` test untraced in a pytest-xdist worker too.

    pytest-cov stops coverage around such a test in a plain run, but in a worker the
    coverage it pauses is not the one tracing, and a million-row test ran at a third of its
    speed. This wrapper runs inside pytest-cov's: it stops whatever coverage still traces
    and starts it again afterwards (nothing, if pytest-cov's pause worked).
    """
    cov = None
    if item.get_closest_marker("no_cover"):
        import coverage

        cov = coverage.Coverage.current()
    if cov is None:
        return (yield)
    cov.stop()
    try:
        return (yield)
    finally:
        if coverage.Coverage.current() is None:
            cov.start()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A PostgreSQL server on a loopback port for the whole session."""
    from strongroom.testing.postgres import TempPostgres

    with TempPostgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A SoftHSM 2 token in a private token directory for the whole session."""
    from strongroom.testing.softhsm import TempSoftHSM

    with TempSoftHSM(tmp_path_factory.mktemp("softhsm")) as token:
        yield token


@pytest.fixture
def service(tmp_path: Path) -> Iterator[KeyService]:
    """A key service over SQLite and a local root key."""
    from strongroom.testing.service import sqlite_key_service

    with sqlite_key_service(tmp_path) as svc:
        yield svc


@pytest.fixture
def alice(service: KeyService) -> Caller:
    """A caller of tenant ``alice`` on ``service``."""
    from strongroom.testing.service import tenant_caller

    return tenant_caller(service, "alice")


@pytest.fixture
def bob(service: KeyService) -> Caller:
    """A caller of tenant ``bob`` on ``service``."""
    from strongroom.testing.service import tenant_caller

    return tenant_caller(service, "bob")


@pytest.fixture(scope="module")
def kms_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """``strongroom server`` on loopback (HTTPS, its own CA) for one test module."""
    from strongroom.testing.server import run_server

    with run_server(tmp_path_factory.mktemp("kms-server") / "data") as info:
        yield info


@pytest.fixture(scope="module")
def kms_key_arn(kms_server: ServerInfo) -> str:
    """A symmetric encryption key of ``kms_server``'s admin tenant."""
    from strongroom.testing.server import client_for

    kms = client_for(kms_server)
    try:
        return str(kms.create_key()["KeyMetadata"]["Arn"])
    finally:
        kms.close()
