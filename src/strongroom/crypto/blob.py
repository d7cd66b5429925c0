"""The KMS ciphertext blob, version 1 (what Encrypt and GenerateDataKey return).

Layout (all integers big-endian)::

    u8  version = 0x01
    u8  kind            0x01 = under a KMS key version, 0x02 = under a user key
    u8  len(key_id)     1..64, then key_id (ASCII)
    u32 key_version     1..2^32-1
    [kind 0x02 only: u16 len(user_id) 1..256, then user_id (UTF-8)]
    16  salt            random per message
    12  nonce           random per message
    ..  ciphertext || 16-byte GCM tag

Each message has its own key, ``HKDF-Expand(version material, "strongroom/blob/v1" || salt)``,
and AES-256-GCM authenticates ``"strongroom/blob/v1" || lp(tenant) || header || context``
where ``header`` is every byte before the salt and ``context`` the canonical encryption
context. So the tenant, key, version, user and context are all bound: changing any of
them, or any bit of the blob, fails as one :class:`InvalidBlob`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from strongroom.crypto.context import encode_context
from strongroom.crypto.hazmat import (
    NONCE_BYTES,
    TAG_BYTES,
    AuthenticationFailed,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    hkdf_expand_sha256,
    length_prefixed,
    random_bytes,
)

BLOB_VERSION = 1
SALT_BYTES = 16
MAX_KEY_ID_BYTES = 64
MAX_USER_ID_BYTES = 256
_LABEL = b"strongroom/blob/v1"
_MIN_TAIL = SALT_BYTES + NONCE_BYTES + TAG_BYTES


class BlobKind(IntEnum):
    """What a blob is encrypted under."""

    KEY = 1
    USER_KEY = 2


_KINDS = {1: BlobKind.KEY, 2: BlobKind.USER_KEY}


class InvalidBlob(Exception):
    """The bytes are not a valid blob, or do not authenticate. Carries no detail."""


@dataclass(frozen=True, slots=True)
class BlobHeader:
    """The public part of a blob: which key (and user key) can open it."""

    key_id: str
    key_version: int
    kind: BlobKind = BlobKind.KEY
    user_id: str | None = None

    def encode(self) -> bytes:
        """Return the header bytes (the prefix of the blob before the salt)."""
        key_id = self.key_id.encode("ascii")
        if not 1 <= len(key_id) <= MAX_KEY_ID_BYTES:
            raise ValueError("key id length out of range")
        if not 1 <= self.key_version <= 0xFFFFFFFF:
            raise ValueError("key version out of range")
        out = bytearray((BLOB_VERSION, int(self.kind), len(key_id)))
        out += key_id
        out += struct.pack(">I", self.key_version)
        if self.kind is BlobKind.USER_KEY:
            if self.user_id is None:
                raise ValueError("a user-key blob needs a user id")
            user = self.user_id.encode("utf-8")
            if not 1 <= len(user) <= MAX_USER_ID_BYTES:
                raise ValueError("user id length out of range")
            out += struct.pack(">H", len(user)) + user
        elif self.user_id is not None:
            raise ValueError("only user-key blobs carry a user id")
        return bytes(out)


def parse_header(blob: bytes) -> tuple[BlobHeader, int]:
    """Parse the header of ``blob``; return it and the offset of the salt.

    Raises :class:`InvalidBlob` for anything malformed, including a blob too short to
    hold salt, nonce and tag after the header.
    """
    try:
        if len(blob) < 3 or blob[0] != BLOB_VERSION:
            raise InvalidBlob
        kind = _KINDS.get(blob[1])
        if kind is None:
            raise InvalidBlob
        id_len = blob[2]
        if not 1 <= id_len <= MAX_KEY_ID_BYTES:
            raise InvalidBlob
        offset = 3
        key_id = blob[offset : offset + id_len].decode("ascii")
        offset += id_len
        if len(blob) < offset + 4:
            raise InvalidBlob
        (version,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if version == 0:
            raise InvalidBlob
        user_id: str | None = None
        if kind is BlobKind.USER_KEY:
            if len(blob) < offset + 2:
                raise InvalidBlob
            (user_len,) = struct.unpack_from(">H", blob, offset)
            offset += 2
            if not 1 <= user_len <= MAX_USER_ID_BYTES or len(blob) < offset + user_len:
                raise InvalidBlob
            user_id = blob[offset : offset + user_len].decode("utf-8")
            offset += user_len
        if len(blob) < offset + _MIN_TAIL or len(key_id) != id_len:
            raise InvalidBlob
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBlob from exc
    return BlobHeader(key_id, version, kind, user_id), offset


def _aad(tenant: str, header: bytes, context: Mapping[str, str] | None) -> bytes:
    return _LABEL + length_prefixed(tenant.encode("utf-8")) + header + encode_context(context)


def _message_key(material: bytes, salt: bytes) -> bytes:
    return hkdf_expand_sha256(material, _LABEL + salt)


def seal(
    material: bytes,
    tenant: str,
    header: BlobHeader,
    plaintext: bytes,
    context: Mapping[str, str] | None = None,
) -> bytes:
    """Encrypt ``plaintext`` under ``material`` into a version-1 blob."""
    return seal_with(
        material,
        tenant,
        header,
        plaintext,
        context,
        random_bytes(SALT_BYTES),
        random_bytes(NONCE_BYTES),
    )


def seal_with(
    material: bytes,
    tenant: str,
    header: BlobHeader,
    plaintext: bytes,
    context: Mapping[str, str] | None,
    salt: bytes,
    nonce: bytes,
) -> bytes:
    """Like :func:`seal` with the salt and nonce given: for test vectors only."""
    head = header.encode()
    sealed = aes_gcm_encrypt(
        _message_key(material, salt), nonce, plaintext, _aad(tenant, head, context)
    )
    return head + salt + nonce + sealed


def open_blob(
    material: bytes,
    tenant: str,
    blob: bytes,
    context: Mapping[str, str] | None = None,
    header_end: int | None = None,
) -> bytes:
    """Decrypt a blob whose header names ``material``'s key; raises :class:`InvalidBlob`.

    ``header_end`` is the offset :func:`parse_header` returned for this same blob, when
    the caller parsed it already; a wrong value only makes authentication fail.
    """
    offset = parse_header(blob)[1] if header_end is None else header_end
    salt = blob[offset : offset + SALT_BYTES]
    nonce = blob[offset + SALT_BYTES : offset + SALT_BYTES + NONCE_BYTES]
    sealed = blob[offset + SALT_BYTES + NONCE_BYTES :]
    try:
        return aes_gcm_decrypt(
            _message_key(material, salt), nonce, sealed, _aad(tenant, blob[:offset], context)
        )
    except AuthenticationFailed as exc:
        raise InvalidBlob from exc
