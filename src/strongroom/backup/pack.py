"""Pack files (format v1): many encrypted blobs and an encrypted header naming them.

::

    prefix  magic "SRBP" | version 0x01 | sid (16) | salt (32) | commitment (32)   85 bytes
    blob i  AES-256-GCM(Kp, nonce = 0^4 || u64(i + 1), body_i, aad_i)            i = 0..n-1
    header  AES-256-GCM(Kp, nonce = 0^12, u32 n || n entries || zero padding,
                        aad = repo_id || prefix || "header")
    trailer u32 length of the encrypted header

    Kp, commitment = HKDF-Expand(PRK_sid, "strongroom-backup-v1 pack " || salt, 64)
    aad_i = repo_id || prefix || u64 i || type || compression || blob id || u32 plain length
    entry = type u8 | compression u8 | blob id (32) | offset u32 | stored length u32
            | plain length u32                                             (46 bytes)

Each pack has its own key (random salt), so counter nonces are used once. Blob sizes,
ids and count are only inside the encrypted header (padded with 0-4095 zero bytes), so
the store sees pack sizes, never chunk sizes. The pack's name is :func:`pack_digest`: the
SHA-256 of the prefix, every blob's GCM tag, the encrypted header and the trailer.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.backup.errors import CorruptError
from strongroom.backup.keyring import BLOB_ID_BYTES, SessionKey, object_keys
from strongroom.crypto.hazmat import constant_time_equal, random_bytes

MAGIC = b"SRBP"
VERSION = 1
PREFIX = struct.Struct(">4sB16s32s32s")
ENTRY = struct.Struct(">BB32sIII")
TRAILER = struct.Struct(">I")
TAG_BYTES = 16
MAX_PADDING = 4095
MAX_PACK_BYTES = 1 << 31
MAX_ENTRIES = MAX_PACK_BYTES // TAG_BYTES

TYPE_DATA = 0
TYPE_TREE = 1
COMP_NONE = 0
COMP_ZSTD = 1
_CORRUPT = "A pack file is corrupt."


@dataclass(frozen=True, slots=True)
class PackEntry:
    """One blob of a pack: where it is and what it is (the pack header's row)."""

    index: int
    kind: int
    compression: int
    blob_id: bytes
    offset: int
    length: int
    plain_length: int


def blob_nonce(index: int) -> bytes:
    """The nonce of blob ``index``: 0^4 || u64(index + 1) (0 is the header's)."""
    return bytes(4) + (index + 1).to_bytes(8, "big")


def blob_aad(repo_id: bytes, prefix: bytes, entry: PackEntry) -> bytes:
    """The associated data of one blob: it binds the blob to its pack, place and id."""
    return b"".join(
        (
            repo_id,
            prefix,
            entry.index.to_bytes(8, "big"),
            bytes((entry.kind, entry.compression)),
            entry.blob_id,
            entry.plain_length.to_bytes(4, "big"),
        )
    )


class PackBuilder:
    """Builds one pack in memory: :meth:`add` blobs, then :meth:`finish`."""

    def __init__(self, key: SessionKey, *, salt: bytes | None = None) -> None:
        salt = random_bytes(32) if salt is None else salt
        aes_key, commitment = object_keys(key.prk, b"pack", salt)
        self._repo_id = key.repo_id
        self._aead = AESGCM(aes_key)
        self.prefix = PREFIX.pack(MAGIC, VERSION, key.sid, salt, commitment)
        self._parts: list[bytes] = [self.prefix]
        self._tags: list[bytes] = []
        self.size = len(self.prefix)
        self.entries: list[PackEntry] = []

    def add(
        self,
        kind: int,
        compression: int,
        blob_id: bytes,
        plain_length: int,
        body: bytes | memoryview,
    ) -> PackEntry:
        """Encrypt ``body`` (already compressed when ``compression``) as the next blob."""
        entry = PackEntry(
            len(self.entries),
            kind,
            compression,
            blob_id,
            self.size,
            len(body) + TAG_BYTES,
            plain_length,
        )
        sealed = self._aead.encrypt(
            blob_nonce(entry.index), body, blob_aad(self._repo_id, self.prefix, entry)
        )
        self._parts.append(sealed)
        self._tags.append(sealed[-TAG_BYTES:])
        self.size += len(sealed)
        self.entries.append(entry)
        return entry

    def finish(self, *, padding: int | None = None) -> tuple[str, bytes]:
        """The pack's name (hex SHA-256) and bytes; the builder is spent."""
        pad = secrets.randbelow(MAX_PADDING + 1) if padding is None else padding
        rows = b"".join(
            ENTRY.pack(e.kind, e.compression, e.blob_id, e.offset, e.length, e.plain_length)
            for e in self.entries
        )
        plain = struct.pack(">I", len(self.entries)) + rows + bytes(pad)
        header = self._aead.encrypt(bytes(12), plain, self._repo_id + self.prefix + b"header")
        tail = header + TRAILER.pack(len(header))
        self._parts.append(tail)
        data = b"".join(self._parts)
        self._parts = []
        return _digest(self.prefix, self._tags, tail), data


def _digest(prefix: bytes, tags: list[bytes], tail: bytes | memoryview) -> str:
    digest = hashlib.sha256(prefix)
    for tag in tags:
        digest.update(tag)
    digest.update(tail)
    return digest.hexdigest()


def pack_digest(data: bytes | memoryview, entries: list[PackEntry]) -> str:
    """The name a pack must have: SHA-256 of prefix || every blob's tag || header || trailer.

    Each blob's GCM tag authenticates its ciphertext under the pack key, so for anyone
    without that key this digest binds every byte of the pack, at a 65536th of the cost
    of hashing all of them. ``entries`` come from :func:`read_header` (already checked).
    """
    view = memoryview(data)
    end = entries[-1].offset + entries[-1].length if entries else PREFIX.size
    tags = [bytes(view[e.offset + e.length - TAG_BYTES : e.offset + e.length]) for e in entries]
    return _digest(bytes(view[: PREFIX.size]), tags, view[end:])


@dataclass(frozen=True, slots=True)
class PackPrefix:
    """The clear prefix of a pack: its secret id, salt and commitment."""

    raw: bytes
    sid: bytes
    salt: bytes
    commitment: bytes

    @classmethod
    def parse(cls, data: bytes | memoryview) -> PackPrefix:
        """Parse the first 85 bytes; :class:`CorruptError` if they are not a v1 prefix."""
        if len(data) < PREFIX.size:
            raise CorruptError(_CORRUPT)
        raw = bytes(data[: PREFIX.size])
        magic, version, sid, salt, commitment = PREFIX.unpack(raw)
        if magic != MAGIC or version != VERSION:
            raise CorruptError(_CORRUPT)
        return cls(raw, sid, salt, commitment)

    def aead(self, key: SessionKey) -> AESGCM:
        """The pack's cipher, after checking the commitment (constant time)."""
        aes_key, expected = object_keys(key.prk, b"pack", self.salt)
        if key.sid != self.sid or not constant_time_equal(self.commitment, expected):
            raise CorruptError(_CORRUPT)
        return AESGCM(aes_key)


def read_header(key: SessionKey, data: bytes | memoryview) -> list[PackEntry]:
    """The entries of a whole pack (``data``), each checked to lie inside the pack."""
    prefix = PackPrefix.parse(data)
    aead = prefix.aead(key)
    if len(data) < PREFIX.size + TRAILER.size + TAG_BYTES + 4:
        raise CorruptError(_CORRUPT)
    (header_len,) = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    start = len(data) - TRAILER.size - header_len
    if header_len < TAG_BYTES + 4 or start < PREFIX.size:
        raise CorruptError(_CORRUPT)
    try:
        plain = aead.decrypt(
            bytes(12), bytes(data[start : start + header_len]), key.repo_id + prefix.raw + b"header"
        )
    except InvalidTag as exc:
        raise CorruptError(_CORRUPT) from exc
    return list(parse_entries(plain, start))


def parse_entries(plain: bytes, header_start: int) -> Iterator[PackEntry]:
    """Decode header rows; blobs must be contiguous from the prefix to the header."""
    (count,) = struct.unpack_from(">I", plain)
    if 4 + count * ENTRY.size > len(plain) or any(plain[4 + count * ENTRY.size :]):
        raise CorruptError(_CORRUPT)
    offset = PREFIX.size
    for i in range(count):
        kind, comp, blob_id, off, length, plain_length = ENTRY.unpack_from(
            plain, 4 + i * ENTRY.size
        )
        if off != offset or length < TAG_BYTES or kind > TYPE_TREE or comp > COMP_ZSTD:
            raise CorruptError(_CORRUPT)
        offset += length
        yield PackEntry(i, kind, comp, blob_id, off, length, plain_length)
    if offset != header_start:
        raise CorruptError(_CORRUPT)


def open_blob(
    key: SessionKey, prefix: PackPrefix, aead: AESGCM, entry: PackEntry, sealed: bytes | memoryview
) -> bytes:
    """Decrypt one blob's stored bytes (still compressed when its entry says so)."""
    if len(sealed) != entry.length or len(entry.blob_id) != BLOB_ID_BYTES:
        raise CorruptError(_CORRUPT)
    try:
        return aead.decrypt(  # a memoryview is read in place: no copy of the blob
            blob_nonce(entry.index), sealed, blob_aad(key.repo_id, prefix.raw, entry)
        )
    except InvalidTag as exc:
        raise CorruptError(_CORRUPT) from exc
