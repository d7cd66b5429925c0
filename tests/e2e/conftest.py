"""End-to-end fixtures: one HTTPS server process per test module, tenants, boto3 clients.

The server is the real ``strongroom server`` command (SQLite, local root key, HTTPS with
the instance CA) in a child process, started by :func:`strongroom.testing.e2e_server.start_server`;
tenants are added to its data directory from the test process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from strongroom.testing.e2e_server import RunningServer, add_tenant, start_server
from strongroom.testing.http import AwsCredentials, kms_client

REGION = "eu-west-1"
_NAMES = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server process for the whole test module."""
    with start_server(tmp_path_factory.mktemp("e2e") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def new_tenant(server: RunningServer) -> Callable[[], AwsCredentials]:
    """Make another tenant (with one access key) on the module's server."""

    def make() -> AwsCredentials:
        return add_tenant(server.data_dir, f"tenant-{next(_NAMES)}")

    return make


@pytest.fixture(scope="module")
def tenant_a(new_tenant: Callable[[], AwsCredentials]) -> AwsCredentials:
    """Tenant A's access key."""
    return new_tenant()


@pytest.fixture(scope="module")
def tenant_b(new_tenant: Callable[[], AwsCredentials]) -> AwsCredentials:
    """Tenant B's access key."""
    return new_tenant()


@pytest.fixture(scope="module")
def client_of(server: RunningServer) -> Iterator[Callable[..., Any]]:
    """``client_of(credentials, region=REGION, service="kms", validate=True)``.

    Every client made is closed when the module ends (an idle TLS connection would hold
    up the server's graceful shutdown).
    """
    made: list[Any] = []

    def make(
        credentials: AwsCredentials,
        region: str = REGION,
        service: str = "kms",
        validate: bool = True,
    ) -> Any:
        client = kms_client(server.endpoint, credentials, region, service, validate=validate)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def kms(client_of: Callable[..., Any], tenant_a: AwsCredentials) -> Any:
    """A boto3 KMS client of tenant A in :data:`REGION`."""
    return client_of(tenant_a)


@pytest.fixture(scope="module")
def loose(client_of: Callable[..., Any], tenant_a: AwsCredentials) -> Any:
    """Tenant A's client without botocore's parameter validation: the server answers."""
    return client_of(tenant_a, validate=False)


@pytest.fixture
def whole_module(request: pytest.FixtureRequest) -> None:
    """Skip a test that sums up its module unless every test of the module was selected."""
    defined = {
        name
        for name, value in vars(request.module).items()
        if name.startswith("test_") and callable(value)
    }
    selected = {
        item.originalname
        for item in cast(list[pytest.Function], request.session.items)
        if item.module is request.module
    }
    if defined - selected:
        pytest.skip("sums up the whole module: run it without -k / node ids")
