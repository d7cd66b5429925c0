"""Ed25519 keys (ECC_NIST_EDWARDS25519): pure Ed25519 signing, data key pairs, import."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from strongroom.errors import (
    IncorrectKeyMaterialError,
    InvalidSignatureError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService
from strongroom.testing.key_import import create_external, import_material, pkcs8
from strongroom.testing.service import tenant_caller

SPEC = "ECC_NIST_EDWARDS25519"


@pytest.fixture
def solo(sqlite_service: KeyService) -> Caller:
    """A caller on the SQLite-only service."""
    return tenant_caller(sqlite_service, "solo")


def sign_request(key: str, message: bytes, **extra: str) -> dict[str, object]:
    return {"KeyId": key, "Message": message, "SigningAlgorithm": "ED25519_SHA_512", **extra}


def test_signatures_verify_offline(service: KeyService, alice: Caller) -> None:
    meta = service.call(alice, "CreateKey", {"KeySpec": SPEC, "KeyUsage": "SIGN_VERIFY"})[
        "KeyMetadata"
    ]
    assert meta["SigningAlgorithms"] == ["ED25519_SHA_512"]
    key = meta["KeyId"]
    public = serialization.load_der_public_key(
        service.call(alice, "GetPublicKey", {"KeyId": key})["PublicKey"]
    )
    assert isinstance(public, ed25519.Ed25519PublicKey)
    message = os.urandom(4096)
    signature = service.call(alice, "Sign", sign_request(key, message))["Signature"]
    assert len(signature) == 64
    public.verify(signature, message)
    # pure Ed25519 is deterministic (RFC 8032): the same message, the same signature
    assert service.call(alice, "Sign", sign_request(key, message))["Signature"] == signature
    verified = service.call(alice, "Verify", {**sign_request(key, message), "Signature": signature})
    assert verified["SignatureValid"] is True
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(InvalidSignatureError):
        service.call(alice, "Verify", {**sign_request(key, message), "Signature": tampered})
    with pytest.raises(InvalidSignature):
        public.verify(tampered, message)


def test_what_ed25519_keys_refuse(sqlite_service: KeyService, solo: Caller) -> None:
    service = sqlite_service
    key = service.call(solo, "CreateKey", {"KeySpec": SPEC, "KeyUsage": "SIGN_VERIFY"})[
        "KeyMetadata"
    ]["KeyId"]
    with pytest.raises(ValidationError, match="DIGEST"):
        service.call(solo, "Sign", sign_request(key, bytes(64), MessageType="DIGEST"))
    with pytest.raises(UnsupportedOperationError, match="Ed25519ph"):
        service.call(
            solo,
            "Sign",
            {"KeyId": key, "Message": b"m", "SigningAlgorithm": "ED25519_PH_SHA_512"},
        )
    for usage in ("ENCRYPT_DECRYPT", "KEY_AGREEMENT"):
        with pytest.raises(ValidationError, match="not compatible"):
            service.call(solo, "CreateKey", {"KeySpec": SPEC, "KeyUsage": usage})


def test_ed25519_data_key_pairs(sqlite_service: KeyService, solo: Caller) -> None:
    wrapping = sqlite_service.call(solo, "CreateKey", {})["KeyMetadata"]["KeyId"]
    pair = sqlite_service.call(
        solo, "GenerateDataKeyPair", {"KeyId": wrapping, "KeyPairSpec": SPEC}
    )
    private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], password=None)
    public = serialization.load_der_public_key(pair["PublicKey"])
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(private.sign(b"pair"), b"pair")
    opened = sqlite_service.call(
        solo, "Decrypt", {"CiphertextBlob": pair["PrivateKeyCiphertextBlob"]}
    )
    assert opened["Plaintext"] == pair["PrivateKeyPlaintext"]


def test_imported_ed25519_key(sqlite_service: KeyService, solo: Caller) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    der = pkcs8(private)
    meta = create_external(sqlite_service, solo, SPEC, "SIGN_VERIFY")
    import_material(sqlite_service, solo, meta["KeyId"], der)
    signature = sqlite_service.call(solo, "Sign", sign_request(meta["KeyId"], b"mine"))["Signature"]
    assert signature == private.sign(b"mine")  # deterministic: exactly the local signature
    other = create_external(sqlite_service, solo, SPEC, "SIGN_VERIFY")["KeyId"]
    not_ed25519 = os.urandom(32)
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(sqlite_service, solo, other, not_ed25519)
