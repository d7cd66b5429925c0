"""Raw building blocks: AES-256-GCM, HKDF and HMAC from ``cryptography``.

Hazardous material: these functions do exactly what they say and nothing more. Callers
bind context into the associated data and pick nonces by the rules in docs/formats.md.
Use the recipes (:mod:`strongroom.crypto.blob`, :mod:`strongroom.crypto.wrap`) instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

KEY_BYTES = 32
"""Length of every symmetric key: AES-256."""
NONCE_BYTES = 12
"""AES-GCM nonce length: 96 bits."""
TAG_BYTES = 16
"""AES-GCM tag length: 128 bits."""


class AuthenticationFailed(Exception):
    """The tag, MAC or commitment did not verify. Carries no detail on purpose."""


random_bytes: Callable[[int], bytes] = secrets.token_bytes
"""Return ``n`` bytes from the operating system's CSPRNG (``secrets.token_bytes`` itself,
without a frame of ours: data keys and every blob's salt and nonce come from here)."""


def new_key() -> bytes:
    """Return a fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt with AES-256-GCM; returns ciphertext || 16-byte tag."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt ciphertext || tag; raises :class:`AuthenticationFailed` on any mismatch."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError) as exc:
        raise AuthenticationFailed from exc


def hkdf_sha256(key: bytes, salt: bytes | None, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (extract and expand, RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def hkdf_expand_sha256(prk: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-Expand with SHA-256 over a pseudorandom key (RFC 5869 section 2.3)."""
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key``."""
    return hmac.digest(key, message, hashlib.sha256)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings without leaking where they differ."""
    return hmac.compare_digest(a, b)


def length_prefixed(*parts: bytes) -> bytes:
    """Encode ``parts`` unambiguously: each as a big-endian u32 length then its bytes."""
    out = bytearray()
    for part in parts:
        out += struct.pack(">I", len(part))
        out += part
    return bytes(out)
