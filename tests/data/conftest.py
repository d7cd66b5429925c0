"""Data-key providers of the two tenants of the shared key service (see tests/conftest.py)."""

from __future__ import annotations

import pytest

from strongroom.data import InProcessDataKeys
from strongroom.kms import Caller, KeyService


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
