"""Fresh key material for each key spec (pure: randomness from the OS, no other I/O).

Symmetric and HMAC keys are random bytes; RSA, ECC and ML-DSA keys are private keys
serialised as DER PKCS#8 (the wrapped form) with their public key as DER
SubjectPublicKeyInfo.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa

from strongroom.crypto.hazmat import hkdf_sha256, hmac_sha256, length_prefixed, random_bytes
from strongroom.kms.signing import PrivateKey

MATERIAL_ID_INFO = b"strongroom/kms/material-id/v1"
"""HKDF info of a tenant's ``KeyMaterialId`` key (imported and generated material alike)."""

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}

_MLDSA: dict[str, Any] = {
    "ML_DSA_44": mldsa.MLDSA44PrivateKey,
    "ML_DSA_65": mldsa.MLDSA65PrivateKey,
    "ML_DSA_87": mldsa.MLDSA87PrivateKey,
}
"""ML-DSA parameter sets (FIPS 204) by key spec; private keys serialise as their seed."""

ED25519 = "ECC_NIST_EDWARDS25519"

HMAC_KEY_BYTES = {"HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}

IMPORTED_HMAC_BYTES = {
    "HMAC_224": (28, 64),
    "HMAC_256": (32, 64),
    "HMAC_384": (48, 128),
    "HMAC_512": (64, 128),
}
"""Lengths AWS KMS accepts for imported HMAC key material, inclusive."""


def new_material(key_spec: str) -> tuple[bytes, bytes | None]:
    """Return ``(secret material, public key DER or None)`` for a new key of ``key_spec``."""
    if key_spec == "SYMMETRIC_DEFAULT":
        return random_bytes(32), None
    if key_spec in HMAC_KEY_BYTES:
        return random_bytes(HMAC_KEY_BYTES[key_spec]), None
    private: PrivateKey
    if key_spec.startswith("RSA_"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=int(key_spec[4:]))
    elif key_spec in _CURVES:
        private = ec.generate_private_key(_CURVES[key_spec]())
    elif key_spec in _MLDSA:
        private = _MLDSA[key_spec].generate()
    elif key_spec == ED25519:
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unknown key spec {key_spec}")
    return _serialise(private)


def _serialise(private: PrivateKey) -> tuple[bytes, bytes]:
    secret = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return secret, public


def checked_material(key_spec: str, raw: bytes) -> tuple[bytes, bytes | None]:
    """Check imported key material against ``key_spec``; return it as :func:`new_material` does.

    Symmetric material must be 32 bytes, HMAC material within :data:`IMPORTED_HMAC_BYTES`;
    RSA, ECC and ML-DSA material is a private key in DER PKCS#8 of exactly that size, curve
    or parameter set, and
    comes back re-serialised (canonical DER) with its public key. Raises ``ValueError`` with
    a message that names no key material.
    """
    if key_spec == "SYMMETRIC_DEFAULT":
        if len(raw) != 32:
            raise ValueError("symmetric key material must be 256 bits")
        return raw, None
    if key_spec in IMPORTED_HMAC_BYTES:
        low, high = IMPORTED_HMAC_BYTES[key_spec]
        if not low <= len(raw) <= high:
            raise ValueError(f"{key_spec} key material must be {low} to {high} bytes")
        return raw, None
    try:
        private = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("key material is not a DER PKCS#8 private key") from None
    if key_spec.startswith("RSA_"):
        if not isinstance(private, rsa.RSAPrivateKey) or private.key_size != int(key_spec[4:]):
            raise ValueError(f"key material is not an {key_spec} private key")
        return _serialise(private)
    if key_spec == ED25519:
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise ValueError(f"key material is not an {key_spec} private key")
        return _serialise(private)
    if key_spec in _MLDSA:
        if not isinstance(private, _MLDSA[key_spec]):
            raise ValueError(f"key material is not an {key_spec} private key")
        return _serialise(private)
    curve = _CURVES.get(key_spec)
    if curve is None:
        raise ValueError(f"unknown key spec {key_spec}")
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(private.curve, curve):
        raise ValueError(f"key material is not an {key_spec} private key")
    return _serialise(private)


# -- KeyMaterialId ------------------------------------------------------------------------


def material_fingerprint_key(tenant_kek: bytes) -> bytes:
    """The tenant's key for ``KeyMaterialId`` values: HKDF of its KEK, one-way."""
    return hkdf_sha256(tenant_kek, None, MATERIAL_ID_INFO)


def imported_material_id(fingerprint_key: bytes, key_id: str, material: bytes) -> str:
    """``KeyMaterialId`` of imported material: the same material in a key, the same id."""
    return hmac_sha256(fingerprint_key, length_prefixed(key_id.encode("ascii"), material)).hex()


def generated_material_id(fingerprint_key: bytes, key_id: str, version: int) -> str:
    """``KeyMaterialId`` of generated material: one material per (key, version) for life."""
    message = length_prefixed(b"generated", key_id.encode("ascii"), version.to_bytes(4, "big"))
    return hmac_sha256(fingerprint_key, message).hex()
