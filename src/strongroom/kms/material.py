"""Fresh key material for each key spec (pure: randomness from the OS, no other I/O).

Symmetric and HMAC keys are random bytes; RSA and ECC keys are private keys serialised as
DER PKCS#8 (the wrapped form) with their public key as DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from strongroom.crypto.hazmat import random_bytes

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}

HMAC_KEY_BYTES = {"HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}


def new_material(key_spec: str) -> tuple[bytes, bytes | None]:
    """Return ``(secret material, public key DER or None)`` for a new key of ``key_spec``."""
    if key_spec == "SYMMETRIC_DEFAULT":
        return random_bytes(32), None
    if key_spec in HMAC_KEY_BYTES:
        return random_bytes(HMAC_KEY_BYTES[key_spec]), None
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key_spec.startswith("RSA_"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=int(key_spec[4:]))
    elif key_spec in _CURVES:
        private = ec.generate_private_key(_CURVES[key_spec]())
    else:
        raise ValueError(f"unknown key spec {key_spec}")
    secret = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return secret, public
