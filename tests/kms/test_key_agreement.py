"""DeriveSharedSecret and KEY_AGREEMENT keys, checked against ECDH done locally."""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from strongroom.errors import (
    DisabledError,
    DryRunOperationError,
    InvalidKeyUsageError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService
from strongroom.testing.key_import import create_external, import_material, pkcs8

CURVES = {
    "ECC_NIST_P256": ec.SECP256R1(),
    "ECC_NIST_P384": ec.SECP384R1(),
    "ECC_NIST_P521": ec.SECP521R1(),
}


def spki(public: Any) -> bytes:
    der: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def agreement_key(service: KeyService, caller: Caller, spec: str) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(
        caller, "CreateKey", {"KeySpec": spec, "KeyUsage": "KEY_AGREEMENT"}
    )["KeyMetadata"]
    return meta


def derive(service: KeyService, caller: Caller, key: str, public: bytes) -> dict[str, Any]:
    reply: dict[str, Any] = service.call(
        caller,
        "DeriveSharedSecret",
        {"KeyId": key, "KeyAgreementAlgorithm": "ECDH", "PublicKey": public},
    )
    return reply


@pytest.mark.parametrize("spec", sorted(CURVES))
def test_both_sides_derive_the_same_secret(service: KeyService, alice: Caller, spec: str) -> None:
    meta = agreement_key(service, alice, spec)
    assert meta["KeyUsage"] == "KEY_AGREEMENT"
    assert meta["KeyAgreementAlgorithms"] == ["ECDH"]
    published = service.call(alice, "GetPublicKey", {"KeyId": meta["KeyId"]})
    assert published["KeyAgreementAlgorithms"] == ["ECDH"]
    assert "SigningAlgorithms" not in published
    service_public = serialization.load_der_public_key(published["PublicKey"])
    assert isinstance(service_public, ec.EllipticCurvePublicKey)

    local = ec.generate_private_key(CURVES[spec])
    reply = derive(service, alice, meta["KeyId"], spki(local.public_key()))
    assert reply["SharedSecret"] == local.exchange(ec.ECDH(), service_public)
    assert (reply["KeyId"], reply["KeyAgreementAlgorithm"], reply["KeyOrigin"]) == (
        meta["Arn"],
        "ECDH",
        "AWS_KMS",
    )
    # another peer, another secret; the same peer, the same secret
    other = ec.generate_private_key(CURVES[spec])
    assert (
        derive(service, alice, meta["KeyId"], spki(other.public_key()))["SharedSecret"]
        != (reply["SharedSecret"])
    )
    again = derive(service, alice, meta["Arn"], spki(local.public_key()))
    assert again["SharedSecret"] == reply["SharedSecret"]


def test_which_keys_agree(sqlite_service: KeyService, solo: Caller) -> None:
    service = sqlite_service
    for spec in ("SYMMETRIC_DEFAULT", "HMAC_256", "RSA_2048", "ECC_SECG_P256K1"):
        with pytest.raises(ValidationError, match="KEY_AGREEMENT"):
            service.call(solo, "CreateKey", {"KeySpec": spec, "KeyUsage": "KEY_AGREEMENT"})
    signing = service.call(
        solo, "CreateKey", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
    )["KeyMetadata"]["KeyId"]
    public = spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(InvalidKeyUsageError):
        derive(service, solo, signing, public)
    symmetric = service.call(solo, "CreateKey", {})["KeyMetadata"]["KeyId"]
    with pytest.raises(InvalidKeyUsageError):
        derive(service, solo, symmetric, public)
    agreeing = agreement_key(service, solo, "ECC_NIST_P256")["KeyId"]
    # key agreement keys neither sign nor encrypt
    with pytest.raises(InvalidKeyUsageError):
        service.call(
            solo,
            "Sign",
            {"KeyId": agreeing, "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"},
        )


def test_peer_public_keys_are_checked(sqlite_service: KeyService, solo: Caller) -> None:
    key = agreement_key(sqlite_service, solo, "ECC_NIST_P384")["KeyId"]
    wrong_curve = spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    not_ec = spki(x25519.X25519PrivateKey.generate().public_key())
    for public in (wrong_curve, not_ec, b"\x30" * 40, os.urandom(120)):
        with pytest.raises(ValidationError, match="PublicKey"):
            derive(sqlite_service, solo, key, public)
    with pytest.raises(ValidationError):
        sqlite_service.call(
            solo,
            "DeriveSharedSecret",
            {"KeyId": key, "KeyAgreementAlgorithm": "ECMQV", "PublicKey": wrong_curve},
        )
    good = spki(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(UnsupportedOperationError, match="Recipient"):
        sqlite_service.call(
            solo,
            "DeriveSharedSecret",
            {
                "KeyId": key,
                "KeyAgreementAlgorithm": "ECDH",
                "PublicKey": good,
                "Recipient": {"AttestationDocument": b"x"},
            },
        )
    with pytest.raises(DryRunOperationError):
        sqlite_service.call(
            solo,
            "DeriveSharedSecret",
            {"KeyId": key, "KeyAgreementAlgorithm": "ECDH", "PublicKey": good, "DryRun": True},
        )
    sqlite_service.call(solo, "DisableKey", {"KeyId": key})
    with pytest.raises(DisabledError):
        derive(sqlite_service, solo, key, good)


def test_an_imported_key_agrees_with_its_own_private_key(
    sqlite_service: KeyService, solo: Caller
) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    meta = create_external(sqlite_service, solo, "ECC_NIST_P256", "KEY_AGREEMENT")
    der = pkcs8(private)
    import_material(sqlite_service, solo, meta["KeyId"], der, "RSA_AES_KEY_WRAP_SHA_256")
    peer = ec.generate_private_key(ec.SECP256R1())
    reply = derive(sqlite_service, solo, meta["KeyId"], spki(peer.public_key()))
    assert reply["SharedSecret"] == private.exchange(ec.ECDH(), peer.public_key())
    assert reply["KeyOrigin"] == "EXTERNAL"
    last = sqlite_service.call(solo, "GetKeyLastUsage", {"KeyId": meta["KeyId"]})
    assert last["KeyLastUsage"]["Operation"] == "DeriveSharedSecret"


@pytest.fixture
def solo(sqlite_service: KeyService) -> Caller:
    """A caller on the SQLite-only service."""
    from strongroom.testing.service import tenant_caller

    return tenant_caller(sqlite_service, "solo")
