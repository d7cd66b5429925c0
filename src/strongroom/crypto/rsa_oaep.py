"""RSAES-OAEP as AWS KMS uses it: each algorithm's padding and longest plaintext (pure).

AWS KMS encrypts with RSA keys (Encrypt, Decrypt, ReEncrypt) and unwraps imported key
material (``RSAES_OAEP_SHA_*``, ``RSA_AES_KEY_WRAP_SHA_*``) with OAEP whose MGF1 hash is
the OAEP hash and whose label is empty; the ciphertext is the bare RSAES-OAEP ciphertext,
as long as the modulus.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

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
