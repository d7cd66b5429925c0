"""The header of a KMS ciphertext blob, version 1: the bytes before the salt.

Layout (all integers big-endian; :mod:`strongroom.crypto.blob` has the whole blob)::

    u8  version = 0x01
    u8  kind            0x01 = under a KMS key version, 0x02 = under a user key
    u8  len(key_id)     1..64, then key_id (ASCII)
    u32 key_version     1..2^32-1
    [kind 0x02 only: u16 len(user_id) 1..256, then user_id (UTF-8)]

Parsed (:func:`parse_header`, :class:`HeaderCache`) and written (:meth:`BlobHeader.encode`)
here; the header is public, and authenticated as part of the blob's associated data.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

from strongroom.crypto.hazmat import NONCE_BYTES, TAG_BYTES

BLOB_VERSION = 1
SALT_BYTES = 16
MAX_KEY_ID_BYTES = 64
MAX_USER_ID_BYTES = 256
_MIN_TAIL = SALT_BYTES + NONCE_BYTES + TAG_BYTES


class BlobKind(IntEnum):
    """What a blob is encrypted under."""

    KEY = 1
    USER_KEY = 2


class InvalidBlob(Exception):
    """The bytes are not a valid blob, or do not authenticate. Carries no detail."""


# A named tuple, not a frozen dataclass: built on every Encrypt and GenerateDataKey, and a
# frozen dataclass sets each field through object.__setattr__ (about 1 µs; this: 0.1).
class BlobHeader(NamedTuple):
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
    size = len(blob)
    if size < 3 or blob[0] != BLOB_VERSION:
        raise InvalidBlob
    kind_byte, id_len = blob[1], blob[2]
    if not 1 <= id_len <= MAX_KEY_ID_BYTES:
        raise InvalidBlob
    offset = 3 + id_len + 4  # key id, then the u32 version
    if kind_byte == 1:  # BlobKind.KEY, the common case, checked in one go
        if size < offset + _MIN_TAIL:
            raise InvalidBlob
        version = int.from_bytes(blob[offset - 4 : offset], "big")
        if version == 0:
            raise InvalidBlob
        try:
            key_id = blob[3 : 3 + id_len].decode("ascii")
        except UnicodeDecodeError as exc:
            raise InvalidBlob from exc
        return BlobHeader(key_id, version), offset
    if kind_byte != 2 or size < offset + 2:
        raise InvalidBlob
    try:
        key_id = blob[3 : 3 + id_len].decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidBlob from exc
    version = int.from_bytes(blob[offset - 4 : offset], "big")
    user_len = int.from_bytes(blob[offset : offset + 2], "big")
    offset += 2
    if version == 0 or not 1 <= user_len <= MAX_USER_ID_BYTES or size < offset + user_len:
        raise InvalidBlob
    try:
        user_id = blob[offset : offset + user_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBlob from exc
    offset += user_len
    if size < offset + _MIN_TAIL:
        raise InvalidBlob
    return BlobHeader(key_id, version, BlobKind.USER_KEY, user_id), offset


class HeaderCache:
    """:func:`parse_header` for blobs under KMS key versions, remembering what it parsed.

    Blobs under one key version share their header bytes, so a header seen before is
    looked up rather than parsed again (a header object and its checks cost more than a
    dictionary lookup). The answer is always what :func:`parse_header` gives for the
    same blob. Bounded: when full, everything is forgotten at once.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._items: dict[bytes, BlobHeader] = {}

    def __repr__(self) -> str:
        return f"HeaderCache(entries={len(self._items)})"

    def parse(self, blob: bytes) -> tuple[BlobHeader, int]:
        """Parse the header of ``blob`` as :func:`parse_header` does."""
        if type(blob) is not bytes:  # a bytearray's slices cannot be looked up
            return parse_header(blob)
        size = len(blob)
        if size > 2 and blob[1] == 1:  # BlobKind.KEY
            end = blob[2] + 7  # version, kind, key id length, key id, u32 key version
            if size >= end + _MIN_TAIL:
                found = self._items.get(blob[:end])
                if found is not None:  # the same header bytes parsed before
                    return found, end
        header, end = parse_header(blob)
        if header.kind is BlobKind.KEY and self._max > 0:
            if len(self._items) >= self._max:
                self._items = {}
            self._items[blob[:end]] = header
        return header, end


ENCODED_HEADERS: dict[tuple[str, int], bytes] = {}
"""Encoded headers of key-version blobs by (key id, version): every Encrypt under one
version writes the same header bytes. Bounded: when full, everything is forgotten."""
_MAXENCODED_HEADERS = 4096


def encode_header(header: BlobHeader) -> bytes:
    """``header.encode()``, remembered for key-version headers (:data:`ENCODED_HEADERS`)."""
    if header.kind is not BlobKind.KEY or header.user_id is not None:
        return header.encode()
    ident = (header.key_id, header.key_version)
    head = ENCODED_HEADERS.get(ident)
    if head is None:
        head = header.encode()  # checks the id and version: only valid headers are kept
        if len(ENCODED_HEADERS) >= _MAXENCODED_HEADERS:
            ENCODED_HEADERS.clear()
        ENCODED_HEADERS[ident] = head
    return head
