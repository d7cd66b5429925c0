"""The pure signing schemes (crypto/signing.py) and the key service's errors over them."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from strongroom.crypto import signing as pure
from strongroom.crypto.rsa_oaep import max_oaep_plaintext
from strongroom.errors import KMSInternalError, ValidationError
from strongroom.kms import signing as service


def _der(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_pure_scheme_signs_and_verifies_and_refuses_with_its_own_errors() -> None:
    key = pure.load_private(_der(ec.generate_private_key(ec.SECP256R1())))
    scheme = pure.SigningScheme.named("ECDSA_SHA_256")
    signature = scheme.sign(key, b"message", pure.RAW)
    assert scheme.verify(key.public_key(), signature, b"message", pure.RAW)
    assert not scheme.verify(key.public_key(), signature, b"other", pure.RAW)
    with pytest.raises(pure.InvalidMessage, match="exactly 32 bytes"):
        scheme.sign(key, b"short", pure.DIGEST)
    with pytest.raises(pure.KeyMismatch):
        pure.SigningScheme.named("RSASSA_PSS_SHA_256").sign(key, b"m", pure.RAW)
    with pytest.raises(pure.KeyMismatch):
        pure.load_public(None)


def test_the_service_maps_them_to_its_errors_with_the_same_text() -> None:
    key = service.load_private(_der(ed25519.Ed25519PrivateKey.generate()))
    scheme = service.SigningScheme.named(service.ED25519_SHA_512)
    assert isinstance(scheme, service.SigningScheme)
    assert scheme.verify(key.public_key(), scheme.sign(key, b"m", service.RAW), b"m", service.RAW)
    with pytest.raises(ValidationError, match="MessageType DIGEST is not valid"):
        scheme.sign(key, b"m", service.DIGEST)
    with pytest.raises(KMSInternalError, match="does not match the key type"):
        service.SigningScheme.named("ECDSA_SHA_256").sign(key, b"m", service.RAW)
    with pytest.raises(KMSInternalError, match="has no public key"):
        service.load_public(None)


def test_oaep_plaintext_limits() -> None:
    assert max_oaep_plaintext(2048, "RSAES_OAEP_SHA_256") == 190
    assert max_oaep_plaintext(4096, "RSAES_OAEP_SHA_1") == 470
