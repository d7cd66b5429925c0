"""A key service over SQLite and a local root key, with two tenants, for data/ tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.data import InProcessDataKeys
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller


@pytest.fixture
def service(tmp_path: Path) -> Iterator[KeyService]:
    svc = KeyService(
        SqliteStore(tmp_path / "store.db"),
        LocalRootOfTrust.create(tmp_path / "master.key"),
        ManualClock(),
    )
    yield svc
    svc.close()


@pytest.fixture
def alice(service: KeyService) -> Caller:
    return tenant_caller(service, "alice")


@pytest.fixture
def bob(service: KeyService) -> Caller:
    return tenant_caller(service, "bob")


@pytest.fixture
def alice_keys(service: KeyService, alice: Caller) -> InProcessDataKeys:
    return InProcessDataKeys(service, alice)


@pytest.fixture
def bob_keys(service: KeyService, bob: Caller) -> InProcessDataKeys:
    return InProcessDataKeys(service, bob)


@pytest.fixture
def alice_key(service: KeyService, alice: Caller) -> str:
    """The ARN of a fresh symmetric KMS key of tenant alice."""
    return str(service.call(alice, "CreateKey", {})["KeyMetadata"]["Arn"])
