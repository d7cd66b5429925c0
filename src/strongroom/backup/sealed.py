"""Sealed objects (format v1): index files, snapshots, locks-free small encrypted files.

::

    magic "SRBS" | version 0x01 | kind (1 byte) | sid (16) | salt (32) | commitment (32)
    | AES-256-GCM(key, nonce = 0^12, zstd(body), aad = repo_id || the 86 header bytes)

``key, commitment = HKDF-Expand(PRK_sid, "strongroom-backup-v1 sealed-<kind> " || salt)``:
a fresh key per object (the salt is random), so the fixed nonce is used once. The
commitment is compared (constant time) before decrypting, so one sealed object cannot
open under two keys. The file's name is the SHA-256 of all its bytes.
"""

from __future__ import annotations

import struct

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.backup.errors import CorruptError
from strongroom.backup.keyring import SECRET_ID_BYTES, SessionKey, object_keys
from strongroom.crypto.hazmat import constant_time_equal, random_bytes

MAGIC = b"SRBS"
VERSION = 1
HEADER = struct.Struct(">4sBc16s32s32s")
NONCE = bytes(12)
MAX_BODY_BYTES = 256 << 20
"""A sealed body may expand to at most this much (a decompression bomb is corrupt)."""

KIND_INDEX = b"I"
KIND_SNAPSHOT = b"S"
KIND_TOMBSTONE = b"T"
KINDS = frozenset({KIND_INDEX, KIND_SNAPSHOT, KIND_TOMBSTONE})


def _label(kind: bytes) -> bytes:
    return b"sealed-" + kind


def seal(key: SessionKey, kind: bytes, body: bytes, *, salt: bytes | None = None) -> bytes:
    """Seal ``body`` as one object of ``kind`` under ``key`` (``salt`` only for vectors)."""
    if kind not in KINDS:
        raise ValueError("unknown sealed kind")
    salt = random_bytes(32) if salt is None else salt
    aes_key, commitment = object_keys(key.prk, _label(kind), salt)
    header = HEADER.pack(MAGIC, VERSION, kind, key.sid, salt, commitment)
    packed = zstandard.ZstdCompressor(level=3).compress(body)
    return header + AESGCM(aes_key).encrypt(NONCE, packed, key.repo_id + header)


def sealed_sid(blob: bytes, kind: bytes) -> bytes:
    """The secret id a sealed object is under (to find its key); checks magic and kind."""
    if len(blob) < HEADER.size + 16:
        raise CorruptError("A repository object is corrupt.")
    magic, version, found, sid, _, _ = HEADER.unpack_from(blob)
    if magic != MAGIC or version != VERSION or found != kind:
        raise CorruptError("A repository object is corrupt.")
    assert len(sid) == SECRET_ID_BYTES
    return bytes(sid)


def unseal(key: SessionKey, kind: bytes, blob: bytes) -> bytes:
    """The body of a sealed object; :class:`CorruptError` for any fault."""
    sid = sealed_sid(blob, kind)
    _, _, _, _, salt, commitment = HEADER.unpack_from(blob)
    if sid != key.sid:
        raise CorruptError("A repository object is corrupt.")
    aes_key, expected = object_keys(key.prk, _label(kind), salt)
    if not constant_time_equal(commitment, expected):
        raise CorruptError("A repository object is corrupt.")
    header = blob[: HEADER.size]
    try:
        packed = AESGCM(aes_key).decrypt(NONCE, blob[HEADER.size :], key.repo_id + header)
        return zstandard.ZstdDecompressor().decompress(packed, max_output_size=MAX_BODY_BYTES)
    except (InvalidTag, zstandard.ZstdError) as exc:
        raise CorruptError("A repository object is corrupt.") from exc
