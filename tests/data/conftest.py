"""A key service over SQLite and a local root key, with two tenants, for data/ tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.data import InProcessDataKeys
from strongroom.kms import Caller, KeyService
from strongroom.testing.service import sqlite_key_service, tenant_caller


@pytest.fixture
def service(tmp_path: Path) -> Iterator[KeyService]:
    with sqlite_key_service(tmp_path) as svc:
        yield svc


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
