"""Wrapping of key material under a parent key, with the wrapped key's identity bound in.

Layout::

    u8 version = 0x01 || 12-byte random nonce || AES-256-GCM(material) || 16-byte tag

with associated data ``"strongroom/wrap/v1" || identity``. The identity is the
length-prefixed tuple (purpose, tenant, key id, version, ...) of the key being wrapped, so
a wrapped key copied to another row, tenant or version does not unwrap.
"""

from __future__ import annotations

from strongroom.crypto.hazmat import (
    NONCE_BYTES,
    TAG_BYTES,
    AuthenticationFailed,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    length_prefixed,
    random_bytes,
)

WRAP_VERSION = 1
_LABEL = b"strongroom/wrap/v1"


class UnwrapFailed(Exception):
    """The wrapped key is malformed or does not belong to this identity or parent."""


def key_identity(*parts: str | int) -> bytes:
    """Encode the identity of a key (purpose, tenant, ids, version) unambiguously."""
    return length_prefixed(*(str(p).encode("utf-8") for p in parts))


def wrap_key(parent: bytes, material: bytes, identity: bytes) -> bytes:
    """Encrypt ``material`` under ``parent`` bound to ``identity``."""
    return wrap_key_with(parent, material, identity, random_bytes(NONCE_BYTES))


def wrap_key_with(parent: bytes, material: bytes, identity: bytes, nonce: bytes) -> bytes:
    """Like :func:`wrap_key` with the nonce given: for test vectors only."""
    return (
        bytes((WRAP_VERSION,)) + nonce + aes_gcm_encrypt(parent, nonce, material, _LABEL + identity)
    )


def unwrap_key(parent: bytes, wrapped: bytes, identity: bytes) -> bytes:
    """Decrypt a wrapped key; raises :class:`UnwrapFailed` on any mismatch."""
    if len(wrapped) < 1 + NONCE_BYTES + TAG_BYTES or wrapped[0] != WRAP_VERSION:
        raise UnwrapFailed
    nonce = wrapped[1 : 1 + NONCE_BYTES]
    try:
        return aes_gcm_decrypt(parent, nonce, wrapped[1 + NONCE_BYTES :], _LABEL + identity)
    except AuthenticationFailed as exc:
        raise UnwrapFailed from exc
