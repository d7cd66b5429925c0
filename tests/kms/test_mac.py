"""GenerateMac and VerifyMac with HMAC KMS keys, with AWS KMS semantics.

That our MAC is plain HMAC is checked offline in tests/kms/test_import.py, where the test
knows the key material because it imported it.
"""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.errors import (
    AccessDeniedError,
    DisabledError,
    DryRunOperationError,
    InvalidKeyUsageError,
    InvalidMacError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService
from strongroom.testing.service import tenant_caller

SPECS = {"HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}


def create_hmac_key(service: KeyService, caller: Caller, spec: str = "HMAC_256") -> dict[str, Any]:
    meta: dict[str, Any] = service.call(
        caller, "CreateKey", {"KeySpec": spec, "KeyUsage": "GENERATE_VERIFY_MAC"}
    )["KeyMetadata"]
    return meta


def generate_mac(
    service: KeyService, caller: Caller, key: str, message: bytes, algorithm: str = "HMAC_SHA_256"
) -> dict[str, Any]:
    return service.call(
        caller, "GenerateMac", {"KeyId": key, "Message": message, "MacAlgorithm": algorithm}
    )


def verify_mac(
    service: KeyService,
    caller: Caller,
    key: str,
    message: bytes,
    mac: bytes,
    algorithm: str = "HMAC_SHA_256",
) -> dict[str, Any]:
    return service.call(
        caller,
        "VerifyMac",
        {"KeyId": key, "Message": message, "Mac": mac, "MacAlgorithm": algorithm},
    )


@pytest.fixture
def solo(sqlite_service: KeyService) -> Caller:
    """A caller on the SQLite-only service."""
    return tenant_caller(sqlite_service, "solo")


@pytest.mark.parametrize("spec", list(SPECS))
def test_mac_round_trip_per_spec(sqlite_service: KeyService, solo: Caller, spec: str) -> None:
    meta = create_hmac_key(sqlite_service, solo, spec)
    assert meta["MacAlgorithms"] == ["HMAC_SHA_" + spec[5:]]
    algorithm = "HMAC_SHA_" + spec[5:]
    for message in (b"x", b"message " * 512):
        response = generate_mac(sqlite_service, solo, meta["KeyId"], message, algorithm)
        assert response.keys() == {"KeyId", "Mac", "MacAlgorithm"}
        assert response["KeyId"] == meta["Arn"]
        assert response["MacAlgorithm"] == algorithm
        assert len(response["Mac"]) == SPECS[spec]
        again = generate_mac(sqlite_service, solo, meta["Arn"], message, algorithm)
        assert again["Mac"] == response["Mac"]
        checked = verify_mac(
            sqlite_service, solo, meta["KeyId"], message, response["Mac"], algorithm
        )
        assert checked == {"KeyId": meta["Arn"], "MacValid": True, "MacAlgorithm": algorithm}


def test_mac_over_every_store(service: KeyService, alice: Caller) -> None:
    key = create_hmac_key(service, alice)["KeyId"]
    mac = generate_mac(service, alice, key, b"hello")["Mac"]
    assert verify_mac(service, alice, key, b"hello", mac)["MacValid"] is True
    with pytest.raises(InvalidMacError):
        verify_mac(service, alice, key, b"hellO", mac)


def test_tampered_mac_or_message_is_invalid_mac(sqlite_service: KeyService, solo: Caller) -> None:
    key = create_hmac_key(sqlite_service, solo)["KeyId"]
    mac = generate_mac(sqlite_service, solo, key, b"pay 10 EUR")["Mac"]
    for index in (0, 15, 31):
        flipped = bytearray(mac)
        flipped[index] ^= 0x80
        with pytest.raises(InvalidMacError):
            verify_mac(sqlite_service, solo, key, b"pay 10 EUR", bytes(flipped))
    for bad_mac in (mac[:-1], mac + b"\0", mac[:16]):
        with pytest.raises(InvalidMacError):
            verify_mac(sqlite_service, solo, key, b"pay 10 EUR", bad_mac)
    with pytest.raises(InvalidMacError):
        verify_mac(sqlite_service, solo, key, b"pay 90 EUR", mac)
    other = create_hmac_key(sqlite_service, solo)["KeyId"]
    assert generate_mac(sqlite_service, solo, other, b"pay 10 EUR")["Mac"] != mac
    with pytest.raises(InvalidMacError):
        verify_mac(sqlite_service, solo, other, b"pay 10 EUR", mac)


def test_message_length_limits(sqlite_service: KeyService, solo: Caller) -> None:
    key = create_hmac_key(sqlite_service, solo)["KeyId"]
    assert generate_mac(sqlite_service, solo, key, bytes(4096))["Mac"]
    for size in (0, 4097):
        with pytest.raises(ValidationError):
            generate_mac(sqlite_service, solo, key, bytes(size))


@pytest.mark.parametrize(
    ("spec", "usage", "algorithm"),
    [
        ("HMAC_384", "GENERATE_VERIFY_MAC", "HMAC_SHA_256"),
        ("HMAC_224", "GENERATE_VERIFY_MAC", "HMAC_SHA_512"),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "HMAC_SHA_256"),
        ("RSA_2048", "SIGN_VERIFY", "HMAC_SHA_256"),
        ("ECC_NIST_P256", "SIGN_VERIFY", "HMAC_SHA_256"),
    ],
)
def test_wrong_key_or_algorithm_is_invalid_key_usage(
    sqlite_service: KeyService, solo: Caller, spec: str, usage: str, algorithm: str
) -> None:
    key = sqlite_service.call(solo, "CreateKey", {"KeySpec": spec, "KeyUsage": usage})[
        "KeyMetadata"
    ]["KeyId"]
    with pytest.raises(InvalidKeyUsageError):
        generate_mac(sqlite_service, solo, key, b"m", algorithm)
    with pytest.raises(InvalidKeyUsageError):
        verify_mac(sqlite_service, solo, key, b"m", bytes(32), algorithm)


def test_hmac_keys_do_nothing_else(sqlite_service: KeyService, solo: Caller) -> None:
    key = create_hmac_key(sqlite_service, solo)["KeyId"]
    with pytest.raises(InvalidKeyUsageError):
        sqlite_service.call(solo, "Encrypt", {"KeyId": key, "Plaintext": b"x"})
    with pytest.raises(InvalidKeyUsageError):
        sqlite_service.call(solo, "GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})


def test_key_state_applies(service: KeyService, alice: Caller) -> None:
    key = create_hmac_key(service, alice)["KeyId"]
    mac = generate_mac(service, alice, key, b"m")["Mac"]
    service.call(alice, "DisableKey", {"KeyId": key})
    with pytest.raises(DisabledError):
        generate_mac(service, alice, key, b"m")
    with pytest.raises(DisabledError):
        verify_mac(service, alice, key, b"m", mac)
    service.call(alice, "EnableKey", {"KeyId": key})
    assert verify_mac(service, alice, key, b"m", mac)["MacValid"]
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    with pytest.raises(InvalidStateError):
        verify_mac(service, alice, key, b"m", mac)


def test_dry_run(service: KeyService, alice: Caller) -> None:
    key = create_hmac_key(service, alice)["KeyId"]
    with pytest.raises(DryRunOperationError):
        service.call(
            alice,
            "GenerateMac",
            {"KeyId": key, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256", "DryRun": True},
        )


def test_bob_cannot_use_alices_hmac_key(service: KeyService, alice: Caller, bob: Caller) -> None:
    meta = create_hmac_key(service, alice)
    mac = generate_mac(service, alice, meta["KeyId"], b"m")["Mac"]
    with pytest.raises(AccessDeniedError):
        generate_mac(service, bob, meta["Arn"], b"m")
    with pytest.raises(AccessDeniedError):
        verify_mac(service, bob, meta["Arn"], b"m", mac)
    with pytest.raises(NotFoundError):
        verify_mac(service, bob, meta["KeyId"], b"m", mac)
