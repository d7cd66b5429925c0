"""The ciphers KMIP clients ask for, from ``cryptography`` only (pure: bytes in, bytes out).

- AES-GCM (the default): a random 96-bit IV per message chosen here, 128-bit tag, the
  client's Authenticated Encryption Additional Data as AAD.
- AES-CBC with PKCS#5 padding and a random 128-bit IV: what libmongocrypt's delegated KMIP
  flow sends to wrap its data keys. CBC is not authenticated; libmongocrypt authenticates
  what it unwraps (a changed ciphertext yields a key that fails its own AEAD checks).
- HMAC-SHA-1/224/256/384/512 for MAC.

Every decryption failure raises one :class:`CipherFailed` with no detail.
"""

from __future__ import annotations

import hmac as std_hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

GCM_IV_BYTES = 12
GCM_TAG_BYTES = 16
CBC_IV_BYTES = 16

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA-1": hashes.SHA1,
    "SHA-224": hashes.SHA224,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}


class CipherFailed(Exception):
    """Decryption failed (wrong key, IV, tag, padding or data): one error for every cause."""


def gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes, bytes]:
    """``(iv, ciphertext, tag)`` under a fresh random IV."""
    iv = os.urandom(GCM_IV_BYTES)
    sealed = AESGCM(key).encrypt(iv, plaintext, aad or None)
    return iv, sealed[:-GCM_TAG_BYTES], sealed[-GCM_TAG_BYTES:]


def gcm_decrypt(key: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    """The plaintext, or :class:`CipherFailed`."""
    if len(iv) != GCM_IV_BYTES or len(tag) != GCM_TAG_BYTES:
        raise CipherFailed
    try:
        return AESGCM(key).decrypt(iv, ciphertext + tag, aad or None)
    except InvalidTag:
        raise CipherFailed from None


def cbc_encrypt(key: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """``(iv, ciphertext)`` with PKCS#5 padding under a fresh random IV."""
    iv = os.urandom(CBC_IV_BYTES)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv, encryptor.update(padded) + encryptor.finalize()


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """The unpadded plaintext, or :class:`CipherFailed`."""
    if len(iv) != CBC_IV_BYTES or not ciphertext or len(ciphertext) % 16:
        raise CipherFailed
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CipherFailed from None


def mac(key: bytes, hash_name: str, data: bytes) -> bytes:
    """HMAC of ``data`` with the named hash."""
    signer = hmac.HMAC(key, HASHES[hash_name]())
    signer.update(data)
    return signer.finalize()


def same(a: bytes, b: bytes) -> bool:
    """Constant-time comparison."""
    return std_hmac.compare_digest(a, b)
