"""ML-DSA (FIPS 204) keys: ML_DSA_44/65/87 signing with ML_DSA_SHAKE_256, RAW and EXTERNAL_MU.

Every signature is checked offline with the public key GetPublicKey returns, as a client
of AWS KMS would check it.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa

from strongroom.errors import (
    IncorrectKeyMaterialError,
    InvalidKeyUsageError,
    InvalidSignatureError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService
from strongroom.testing.key_import import create_external, import_material, pkcs8
from strongroom.testing.service import tenant_caller

PRIVATE = {
    "ML_DSA_44": mldsa.MLDSA44PrivateKey,
    "ML_DSA_65": mldsa.MLDSA65PrivateKey,
    "ML_DSA_87": mldsa.MLDSA87PrivateKey,
}
PUBLIC: dict[
    str, type[mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey]
] = {
    "ML_DSA_44": mldsa.MLDSA44PublicKey,
    "ML_DSA_65": mldsa.MLDSA65PublicKey,
    "ML_DSA_87": mldsa.MLDSA87PublicKey,
}
ALGORITHM = "ML_DSA_SHAKE_256"


@pytest.fixture
def solo(sqlite_service: KeyService) -> Caller:
    """A caller on the SQLite-only service."""
    return tenant_caller(sqlite_service, "solo")


def sign(
    service: KeyService, caller: Caller, key: str, message: bytes, message_type: str = "RAW"
) -> bytes:
    signature: bytes = service.call(
        caller,
        "Sign",
        {
            "KeyId": key,
            "Message": message,
            "MessageType": message_type,
            "SigningAlgorithm": ALGORITHM,
        },
    )["Signature"]
    return signature


def verify(
    service: KeyService,
    caller: Caller,
    key: str,
    message: bytes,
    signature: bytes,
    message_type: str = "RAW",
) -> dict[str, Any]:
    reply: dict[str, Any] = service.call(
        caller,
        "Verify",
        {
            "KeyId": key,
            "Message": message,
            "MessageType": message_type,
            "Signature": signature,
            "SigningAlgorithm": ALGORITHM,
        },
    )
    return reply


def public_key_of(service: KeyService, caller: Caller, key: str) -> Any:
    published = service.call(caller, "GetPublicKey", {"KeyId": key})
    assert published["SigningAlgorithms"] == [ALGORITHM]
    return serialization.load_der_public_key(published["PublicKey"])


@pytest.mark.parametrize("spec", sorted(PRIVATE))
def test_signatures_verify_offline(service: KeyService, alice: Caller, spec: str) -> None:
    meta = service.call(alice, "CreateKey", {"KeySpec": spec, "KeyUsage": "SIGN_VERIFY"})[
        "KeyMetadata"
    ]
    assert (meta["KeySpec"], meta["SigningAlgorithms"]) == (spec, [ALGORITHM])
    key = meta["KeyId"]
    public = public_key_of(service, alice, key)
    assert isinstance(public, PUBLIC[spec])
    message = os.urandom(4096)  # the longest RAW message
    signature = sign(service, alice, key, message)
    public.verify(signature, message)  # raises if invalid
    assert verify(service, alice, key, message, signature)["SignatureValid"] is True
    with pytest.raises(InvalidSignatureError):
        verify(service, alice, key, message[:-1] + bytes([message[-1] ^ 1]), signature)
    with pytest.raises(InvalidSignature):
        public.verify(signature, message[:-1])

    # EXTERNAL_MU: the caller hashes a message of any size into μ; the signature is the
    # ordinary ML-DSA signature of that message
    large = os.urandom(100_000)
    hasher = mldsa.MLDSAMuHasher(public)
    hasher.update(large)
    mu = hasher.finalize()
    over_mu = sign(service, alice, key, mu, "EXTERNAL_MU")
    public.verify(over_mu, large)
    assert verify(service, alice, key, mu, over_mu, "EXTERNAL_MU")["SignatureValid"] is True
    with pytest.raises(InvalidSignatureError):
        verify(service, alice, key, bytes(64), over_mu, "EXTERNAL_MU")


def test_message_types_and_usages(sqlite_service: KeyService, solo: Caller) -> None:
    service = sqlite_service
    key = service.call(solo, "CreateKey", {"KeySpec": "ML_DSA_44", "KeyUsage": "SIGN_VERIFY"})[
        "KeyMetadata"
    ]["KeyId"]
    with pytest.raises(ValidationError, match="DIGEST"):
        sign(service, solo, key, bytes(64), "DIGEST")
    with pytest.raises(ValidationError, match="64 bytes"):
        sign(service, solo, key, bytes(32), "EXTERNAL_MU")
    with pytest.raises(InvalidKeyUsageError):
        service.call(
            solo,
            "Sign",
            {"KeyId": key, "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"},
        )
    ecdsa = service.call(
        solo, "CreateKey", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
    )["KeyMetadata"]["KeyId"]
    with pytest.raises(ValidationError, match="EXTERNAL_MU"):
        service.call(
            solo,
            "Sign",
            {
                "KeyId": ecdsa,
                "Message": bytes(64),
                "MessageType": "EXTERNAL_MU",
                "SigningAlgorithm": "ECDSA_SHA_256",
            },
        )
    for usage in ("ENCRYPT_DECRYPT", "KEY_AGREEMENT", "GENERATE_VERIFY_MAC"):
        with pytest.raises(ValidationError, match="not compatible"):
            service.call(solo, "CreateKey", {"KeySpec": "ML_DSA_65", "KeyUsage": usage})


def test_imported_ml_dsa_key_signs_for_its_own_public_key(
    sqlite_service: KeyService, solo: Caller
) -> None:
    private = mldsa.MLDSA65PrivateKey.generate()
    meta = create_external(sqlite_service, solo, "ML_DSA_65", "SIGN_VERIFY")
    der = pkcs8(private)
    import_material(sqlite_service, solo, meta["KeyId"], der, "RSA_AES_KEY_WRAP_SHA_256")
    published = public_key_of(sqlite_service, solo, meta["KeyId"])
    assert published.public_bytes_raw() == private.public_key().public_bytes_raw()
    signature = sign(sqlite_service, solo, meta["KeyId"], b"imported")
    private.public_key().verify(signature, b"imported")
    other = pkcs8(mldsa.MLDSA44PrivateKey.generate())
    wrong = create_external(sqlite_service, solo, "ML_DSA_65", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(IncorrectKeyMaterialError, match="ML_DSA_65"):
        import_material(sqlite_service, solo, wrong, other, "RSA_AES_KEY_WRAP_SHA_256")
