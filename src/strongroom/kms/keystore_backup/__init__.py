"""The keystore backup format, version 1: every store record and the audit chain, encrypted.

Pure format code over binary file objects; no store, no root of trust. The caller makes a
random 256-bit backup key, wraps it with the root of trust under
:func:`backup_key_identity` and hands both to :class:`BackupWriter`; reading needs the
unwrapped key again, so a backup opens only where the same root of trust is available.

Layout (integers big-endian)::

    header:  magic "SRKSBKUP" | u8 version = 1 | u8 suite = 1 | u32 chunk_size
             | backup_id (16) | u16 wrapped_len | wrapped backup key
    chunks:  u8 final (0 or 1) | u32 length | AES-256-GCM(plaintext) || tag(16)
             nonce = 0^4 || u64 index
             aad   = "strongroom/keystore-backup/v1" || SHA-256(header) || u64 index || u8 final

Chunk ``i`` holds plaintext bytes ``[i * chunk_size, ...)`` of the payload; every chunk but
the last holds exactly ``chunk_size`` bytes, the last (``final = 1``) holds 1 to
``chunk_size`` bytes and is followed by end of file. The payload is a sequence of entries::

    0x01 META    u32 len | UTF-8 JSON object                        (first, exactly once)
    0x02 RECORD  u16 len | tenant | u16 len | kind | u32 len | name | u32 len | value
    0x03 AUDIT   u64 seq | prev_hash (32) | hash (32) | u32 len | body
    0x04 END     u64 record count | u64 audit event count             (last, exactly once)

Any flipped bit, dropped, reordered, repeated or appended chunk, truncation, or header
swapped between backups fails with one detail-free
:class:`~strongroom.errors.InvalidCiphertextError`; a file that is not a backup at all or
of an unknown version is a :class:`~strongroom.errors.ValidationError`.
"""

from strongroom.kms.keystore_backup.format import (
    BACKUP_ID_BYTES,
    DEFAULT_CHUNK_SIZE,
    MAGIC,
    VERSION,
    BackupHeader,
    BackupSummary,
    StoreEntry,
    backup_key_identity,
    read_header,
)
from strongroom.kms.keystore_backup.reader import BackupReader
from strongroom.kms.keystore_backup.writer import BackupWriter

__all__ = [
    "BACKUP_ID_BYTES",
    "DEFAULT_CHUNK_SIZE",
    "MAGIC",
    "VERSION",
    "BackupHeader",
    "BackupReader",
    "BackupSummary",
    "BackupWriter",
    "StoreEntry",
    "backup_key_identity",
    "read_header",
]
