"""Key material for each key spec, made and checked by its key type; ``KeyMaterialId``.

Each key spec names a :class:`~strongroom.crypto.keytypes.KeyType` (``keyspec.KEY_SPECS``):
symmetric and HMAC keys are random bytes; RSA, ECC, Ed25519, ML-DSA and ML-KEM keys are private
keys serialised as DER PKCS#8 (the wrapped form) with their public key as DER
SubjectPublicKeyInfo. Pure: randomness from the OS, no other I/O.
"""

from __future__ import annotations

from strongroom.crypto.hazmat import hkdf_sha256, hmac_sha256, length_prefixed
from strongroom.kms.keyspec import KEY_SPECS

MATERIAL_ID_INFO = b"strongroom/kms/material-id/v1"
"""HKDF info of a tenant's ``KeyMaterialId`` key (imported and generated material alike)."""


def new_material(key_spec: str) -> tuple[bytes, bytes | None]:
    """Return ``(secret material, public key DER or None)`` for a new key of ``key_spec``."""
    info = KEY_SPECS.get(key_spec)
    if info is None:
        raise ValueError(f"unknown key spec {key_spec}")
    return info.key_type.generate()


def checked_material(key_spec: str, raw: bytes) -> tuple[bytes, bytes | None]:
    """Check imported key material against ``key_spec``; return it as :func:`new_material` does.

    The key spec's :class:`~strongroom.crypto.keytypes.KeyType` decides: symmetric material
    must be 32 bytes, HMAC material within AWS's lengths; RSA, ECC, Ed25519, ML-DSA, ML-KEM
    material is a private key in DER PKCS#8 of exactly that size, curve or parameter set,
    and comes back re-serialised (canonical DER) with its public key. Raises ``ValueError``
    with a message that names no key material.
    """
    info = KEY_SPECS.get(key_spec)
    if info is None:
        raise ValueError(f"unknown key spec {key_spec}")
    return info.key_type.check_import(raw)


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
