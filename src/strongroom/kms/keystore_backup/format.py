"""The keystore backup format v1: constants, the clear header, entries, chunk nonces and AAD.

The layout is described in :mod:`strongroom.kms.keystore_backup`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from strongroom.crypto.hazmat import (
    KEY_BYTES,
)
from strongroom.crypto.wrap import key_identity
from strongroom.errors import InvalidCiphertextError, ValidationError

MAGIC = b"SRKSBKUP"
"""First eight bytes of every keystore backup."""
VERSION = 1
"""The format version this module writes and reads."""
SUITE_AES256GCM = 1
"""Suite 1: AES-256-GCM under the backup key, counter nonces, header hash in the AAD."""
BACKUP_ID_BYTES = 16
DEFAULT_CHUNK_SIZE = 1 << 20
"""Plaintext bytes per chunk written by default (1 MiB)."""
MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 1 << 24
MAX_WRAPPED_KEY_BYTES = 4096
MAX_META_BYTES = 1 << 20
MAX_VALUE_BYTES = 1 << 26
"""Largest record value or audit body accepted (64 MiB), checked before reading it."""
HASH_BYTES = 32

AAD_LABEL = b"strongroom/keystore-backup/v1"
FIXED_HEADER = struct.Struct(">8sBBI16sH")
CHUNK_HEAD = struct.Struct(">BI")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
META, RECORD, AUDIT, END = 1, 2, 3, 4
DAMAGED = "the keystore backup is damaged or was modified"


def backup_key_identity(backup_id: bytes) -> bytes:
    """The identity the backup key is wrapped under by the root of trust."""
    return key_identity("keystore-backup", backup_id.hex())


@dataclass(frozen=True, slots=True)
class BackupHeader:
    """The clear header of a backup: enough to unwrap its key and check its chunks."""

    version: int
    chunk_size: int
    backup_id: bytes
    wrapped_key: bytes
    raw: bytes = field(repr=False)

    @classmethod
    def build(cls, chunk_size: int, backup_id: bytes, wrapped_key: bytes) -> BackupHeader:
        """Return the version-1 header for these parameters."""
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValidationError(
                f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"
            )
        if len(backup_id) != BACKUP_ID_BYTES:
            raise ValidationError(f"a backup id has {BACKUP_ID_BYTES} bytes")
        if not 0 < len(wrapped_key) <= MAX_WRAPPED_KEY_BYTES:
            raise ValidationError("the wrapped backup key has an impossible length")
        raw = (
            FIXED_HEADER.pack(
                MAGIC, VERSION, SUITE_AES256GCM, chunk_size, backup_id, len(wrapped_key)
            )
            + wrapped_key
        )
        return cls(VERSION, chunk_size, backup_id, wrapped_key, raw)


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """One store record as it travels in a backup (the value is opaque, often wrapped keys)."""

    tenant: str
    kind: str
    name: str
    value: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup holds: its id, how many records and audit events."""

    backup_id: bytes
    records: int
    audit_events: int


def read_header(source: BinaryIO) -> BackupHeader:
    """Read and check the header at the current position of ``source``."""
    fixed = source.read(FIXED_HEADER.size)
    if len(fixed) < len(MAGIC) or fixed[: len(MAGIC)] != MAGIC:
        raise ValidationError("this file is not a Strongroom keystore backup")
    if len(fixed) < FIXED_HEADER.size:
        raise InvalidCiphertextError(DAMAGED)
    _, version, suite, chunk_size, backup_id, wrapped_len = FIXED_HEADER.unpack(fixed)
    if version != VERSION:
        raise ValidationError(f"keystore backup version {version} is not supported")
    if suite != SUITE_AES256GCM:
        raise ValidationError(f"keystore backup suite {suite} is not supported")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or not (
        0 < wrapped_len <= MAX_WRAPPED_KEY_BYTES
    ):
        raise InvalidCiphertextError(DAMAGED)
    wrapped = source.read(wrapped_len)
    if len(wrapped) != wrapped_len:
        raise InvalidCiphertextError(DAMAGED)
    return BackupHeader(version, chunk_size, backup_id, wrapped, fixed + wrapped)


def chunk_nonce(index: int) -> bytes:
    """The nonce of chunk ``index``: four zero bytes and the index (one backup key each)."""
    return bytes(4) + U64.pack(index)


def chunk_aad(header_hash: bytes, index: int, final: bool) -> bytes:
    """The AAD of a chunk: label, header hash, index and the final flag."""
    return AAD_LABEL + header_hash + U64.pack(index) + bytes((int(final),))


def check_key(key: bytes) -> None:
    """Refuse a backup key that is not 32 bytes."""
    if len(key) != KEY_BYTES:
        raise ValidationError("the backup key must be 32 bytes")
