"""Shared fixtures: throwaway PostgreSQL server and SoftHSM token, started by the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# CI shares two cores with servers the tests start: wall-clock deadlines would make
# property tests flaky without finding anything; example counts stay at the default.
settings.register_profile("strongroom", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("strongroom")


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
