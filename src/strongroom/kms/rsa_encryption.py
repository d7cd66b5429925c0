"""RSA encryption with a KMS key: RSAES-OAEP, as AWS KMS's Encrypt and Decrypt do it.

The ciphertext is the bare RSAES-OAEP ciphertext (as long as the modulus), so a client can
encrypt offline with the public key GetPublicKey returns. Encrypt, Decrypt and ReEncrypt
(:mod:`strongroom.kms.ops.crypto`) call these for asymmetric encryption keys; the OAEP
parameters are :mod:`strongroom.crypto.rsa_oaep`'s.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.crypto.rsa_oaep import OAEP_HASHES, max_oaep_plaintext, oaep
from strongroom.errors import InvalidCiphertextError, InvalidKeyUsageError, ValidationError
from strongroom.kms.kernel import Kernel
from strongroom.kms.records import KeyRecord
from strongroom.kms.signing import load_private, load_public
from strongroom.ports import StoreTx

__all__ = ["OAEP_HASHES", "asymmetric_decrypt", "asymmetric_encrypt", "max_oaep_plaintext", "oaep"]


def asymmetric_encrypt(
    k: Kernel, tx: StoreTx, key: KeyRecord, algorithm: str, plaintext: bytes
) -> bytes:
    """RSAES-OAEP with the key's public key; plaintext limited as AWS limits it."""
    public = load_public(k.materials.version_record(tx, key, key.current_version).public_key)
    if not isinstance(public, rsa.RSAPublicKey) or algorithm not in OAEP_HASHES:
        raise InvalidKeyUsageError(
            f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
        )
    limit = max_oaep_plaintext(public.key_size, algorithm)
    if len(plaintext) > limit:
        raise ValidationError(
            f"Plaintext is too long: {key.key_spec} with {algorithm} encrypts at most "
            f"{limit} bytes."
        )
    return public.encrypt(plaintext, oaep(algorithm))


def asymmetric_decrypt(
    k: Kernel, tx: StoreTx, key: KeyRecord, algorithm: str, ciphertext: bytes
) -> bytes:
    """RSAES-OAEP decryption; any failure is one InvalidCiphertextError."""
    private = load_private(k.materials.material(tx, key, key.current_version))
    if not isinstance(private, rsa.RSAPrivateKey) or algorithm not in OAEP_HASHES:
        raise InvalidKeyUsageError(
            f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
        )
    if len(ciphertext) != private.key_size // 8:
        raise InvalidCiphertextError("")
    try:
        return private.decrypt(ciphertext, oaep(algorithm))
    except ValueError as exc:
        raise InvalidCiphertextError("") from exc
