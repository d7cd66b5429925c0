"""RSA encryption with a KMS key: RSAES-OAEP, as AWS KMS's Encrypt and Decrypt do it.

The ciphertext is the bare RSAES-OAEP ciphertext (as long as the modulus), so a client can
encrypt offline with the public key GetPublicKey returns. Encrypt, Decrypt and ReEncrypt
(:mod:`strongroom.kms.ops.crypto`) call these for asymmetric encryption keys.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from strongroom.errors import InvalidCiphertextError, InvalidKeyUsageError, ValidationError
from strongroom.kms.kernel import Kernel
from strongroom.kms.records import KeyRecord
from strongroom.kms.signing import load_private, load_public
from strongroom.ports import StoreTx

OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RSAES_OAEP_SHA_1": hashes.SHA1,
    "RSAES_OAEP_SHA_256": hashes.SHA256,
}
"""The RSA encryption algorithms and the hash each uses for OAEP and MGF1."""


def oaep(algorithm: str) -> padding.OAEP:
    """The OAEP padding of an ``RSAES_OAEP_SHA_*`` algorithm (same hash for MGF1, no label)."""
    digest = OAEP_HASHES[algorithm]()
    return padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)


def max_oaep_plaintext(key_bits: int, algorithm: str) -> int:
    """The longest plaintext RSAES-OAEP takes: ``k - 2 * hLen - 2`` (RSA_2048, SHA-256: 190)."""
    return key_bits // 8 - 2 * OAEP_HASHES[algorithm]().digest_size - 2


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
