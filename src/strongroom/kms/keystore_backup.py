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

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from strongroom.crypto.hazmat import (
    KEY_BYTES,
    TAG_BYTES,
    AuthenticationFailed,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
)
from strongroom.crypto.wrap import key_identity
from strongroom.errors import InvalidCiphertextError, ValidationError
from strongroom.ports import AuditRecord

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

_AAD_LABEL = b"strongroom/keystore-backup/v1"
_FIXED_HEADER = struct.Struct(">8sBBI16sH")
_CHUNK_HEAD = struct.Struct(">BI")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_META, _RECORD, _AUDIT, _END = 1, 2, 3, 4
_DAMAGED = "the keystore backup is damaged or was modified"


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
            _FIXED_HEADER.pack(
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
    fixed = source.read(_FIXED_HEADER.size)
    if len(fixed) < len(MAGIC) or fixed[: len(MAGIC)] != MAGIC:
        raise ValidationError("this file is not a Strongroom keystore backup")
    if len(fixed) < _FIXED_HEADER.size:
        raise InvalidCiphertextError(_DAMAGED)
    _, version, suite, chunk_size, backup_id, wrapped_len = _FIXED_HEADER.unpack(fixed)
    if version != VERSION:
        raise ValidationError(f"keystore backup version {version} is not supported")
    if suite != SUITE_AES256GCM:
        raise ValidationError(f"keystore backup suite {suite} is not supported")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or not (
        0 < wrapped_len <= MAX_WRAPPED_KEY_BYTES
    ):
        raise InvalidCiphertextError(_DAMAGED)
    wrapped = source.read(wrapped_len)
    if len(wrapped) != wrapped_len:
        raise InvalidCiphertextError(_DAMAGED)
    return BackupHeader(version, chunk_size, backup_id, wrapped, fixed + wrapped)


def _nonce(index: int) -> bytes:
    return bytes(4) + _U64.pack(index)


def _aad(header_hash: bytes, index: int, final: bool) -> bytes:
    return _AAD_LABEL + header_hash + _U64.pack(index) + bytes((int(final),))


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValidationError("the backup key must be 32 bytes")


class BackupWriter:
    """Write a backup to ``sink``: header and META now, entries as added, END on :meth:`finish`.

    Memory use is one chunk. Nothing is valid until :meth:`finish` wrote the final chunk.
    """

    def __init__(
        self,
        sink: BinaryIO,
        key: bytes,
        header: BackupHeader,
        meta: dict[str, Any],
    ) -> None:
        _check_key(key)
        self._sink = sink
        self._key = key
        self._header = header
        self._header_hash = hashlib.sha256(header.raw).digest()
        self._buffer = bytearray()
        self._index = 0
        self._records = 0
        self._audit = 0
        self._finished = False
        sink.write(header.raw)
        body = json.dumps(meta, separators=(",", ":"), sort_keys=True).encode("utf-8")
        if len(body) > MAX_META_BYTES:
            raise ValidationError("backup metadata is too large")
        self._append(bytes((_META,)) + _U32.pack(len(body)) + body)

    def __repr__(self) -> str:
        return f"BackupWriter(records={self._records}, audit_events={self._audit})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a backup writer holds a key and cannot be pickled")

    def add_record(self, tenant: str, kind: str, name: str, value: bytes) -> None:
        """Append one store record."""
        t, k, n = tenant.encode("utf-8"), kind.encode("utf-8"), name.encode("utf-8")
        if len(t) > 0xFFFF or len(k) > 0xFFFF or len(value) > MAX_VALUE_BYTES:
            raise ValidationError("a store record is too large for a keystore backup")
        self._append(
            b"".join(
                (
                    bytes((_RECORD,)),
                    _U16.pack(len(t)),
                    t,
                    _U16.pack(len(k)),
                    k,
                    _U32.pack(len(n)),
                    n,
                    _U32.pack(len(value)),
                    value,
                )
            )
        )
        self._records += 1

    def add_audit(self, record: AuditRecord) -> None:
        """Append one audit event with its place in the chain."""
        if len(record.prev_hash) != HASH_BYTES or len(record.hash) != HASH_BYTES:
            raise ValidationError("audit hashes must be 32 bytes")
        if len(record.body) > MAX_VALUE_BYTES:
            raise ValidationError("an audit event is too large for a keystore backup")
        self._append(
            bytes((_AUDIT,))
            + _U64.pack(record.seq)
            + record.prev_hash
            + record.hash
            + _U32.pack(len(record.body))
            + record.body
        )
        self._audit += 1

    def finish(self) -> BackupSummary:
        """Write END and the final chunk; return what the backup holds."""
        if self._finished:
            raise ValidationError("the backup is finished already")
        self._buffer += bytes((_END,)) + _U64.pack(self._records) + _U64.pack(self._audit)
        size = self._header.chunk_size
        while len(self._buffer) > size:
            self._emit(bytes(self._buffer[:size]), final=False)
            del self._buffer[:size]
        self._emit(bytes(self._buffer), final=True)
        self._buffer.clear()
        self._finished = True
        return BackupSummary(self._header.backup_id, self._records, self._audit)

    def _append(self, data: bytes) -> None:
        if self._finished:
            raise ValidationError("the backup is finished already")
        self._buffer += data
        size = self._header.chunk_size
        if len(self._buffer) > size:  # keep at least one byte back for the final chunk
            whole = (len(self._buffer) - 1) // size
            for i in range(whole):
                self._emit(bytes(self._buffer[i * size : (i + 1) * size]), final=False)
            del self._buffer[: whole * size]

    def _emit(self, plaintext: bytes, final: bool) -> None:
        sealed = aes_gcm_encrypt(
            self._key,
            _nonce(self._index),
            plaintext,
            _aad(self._header_hash, self._index, final),
        )
        self._sink.write(_CHUNK_HEAD.pack(int(final), len(sealed)) + sealed)
        self._index += 1


class BackupReader:
    """Stream the entries of a backup whose header was read with :func:`read_header`.

    ``source`` must be positioned right after the header. Iterating yields
    :class:`StoreEntry` and :class:`~strongroom.ports.AuditRecord` values in file
    order; the iteration ends only after END, the final chunk and end of file were all
    seen and the counts matched. ``meta`` is the META object. Memory use is one chunk.
    """

    def __init__(self, source: BinaryIO, header: BackupHeader, key: bytes) -> None:
        _check_key(key)
        self._source = source
        self._header = header
        self._key = key
        self._header_hash = hashlib.sha256(header.raw).digest()
        self._buffer = b""
        self._pos = 0
        self._index = 0
        self._final_seen = False
        if self._take(1)[0] != _META:
            raise InvalidCiphertextError(_DAMAGED)
        size = _U32.unpack(self._take(4))[0]
        if size > MAX_META_BYTES:
            raise InvalidCiphertextError(_DAMAGED)
        try:
            meta = json.loads(self._take(size))
        except ValueError as exc:
            raise InvalidCiphertextError(_DAMAGED) from exc
        if not isinstance(meta, dict):
            raise InvalidCiphertextError(_DAMAGED)
        self.meta: dict[str, Any] = meta

    def __repr__(self) -> str:
        return f"BackupReader(chunk={self._index})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a backup reader holds a key and cannot be pickled")

    def __iter__(self) -> Iterator[StoreEntry | AuditRecord]:
        records = audit = 0
        while True:
            tag = self._take(1)[0]
            if tag == _RECORD:
                tenant = self._text(_U16)
                kind = self._text(_U16)
                name = self._text(_U32)
                yield StoreEntry(tenant, kind, name, self._sized(_U32))
                records += 1
            elif tag == _AUDIT:
                seq = _U64.unpack(self._take(8))[0]
                prev_hash = self._take(HASH_BYTES)
                digest = self._take(HASH_BYTES)
                yield AuditRecord(seq, self._sized(_U32), prev_hash, digest)
                audit += 1
            elif tag == _END:
                counts = (_U64.unpack(self._take(8))[0], _U64.unpack(self._take(8))[0])
                if counts != (records, audit) or self._pos != len(self._buffer):
                    raise InvalidCiphertextError(_DAMAGED)
                if not self._final_seen or self._source.read(1):
                    raise InvalidCiphertextError(_DAMAGED)
                return
            else:
                raise InvalidCiphertextError(_DAMAGED)

    def _text(self, length: struct.Struct) -> str:
        try:
            return self._sized(length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidCiphertextError(_DAMAGED) from exc

    def _sized(self, length: struct.Struct) -> bytes:
        size = length.unpack(self._take(length.size))[0]
        if size > MAX_VALUE_BYTES:
            raise InvalidCiphertextError(_DAMAGED)
        return self._take(size)

    def _take(self, n: int) -> bytes:
        """Return the next ``n`` payload bytes, opening chunks as needed."""
        if self._pos + n <= len(self._buffer):
            out = self._buffer[self._pos : self._pos + n]
            self._pos += n
            return out
        parts = [self._buffer[self._pos :]]
        have = len(parts[0])
        while have < n:
            chunk = self._next_chunk()
            parts.append(chunk)
            have += len(chunk)
        joined = b"".join(parts)
        out, self._buffer, self._pos = joined[:n], joined, n
        return out

    def _next_chunk(self) -> bytes:
        if self._final_seen:
            raise InvalidCiphertextError(_DAMAGED)
        head = self._source.read(_CHUNK_HEAD.size)
        if len(head) != _CHUNK_HEAD.size:
            raise InvalidCiphertextError(_DAMAGED)
        final, length = _CHUNK_HEAD.unpack(head)
        if final not in (0, 1) or not TAG_BYTES < length <= self._header.chunk_size + TAG_BYTES:
            raise InvalidCiphertextError(_DAMAGED)
        sealed = self._source.read(length)
        if len(sealed) != length:
            raise InvalidCiphertextError(_DAMAGED)
        try:
            plaintext = aes_gcm_decrypt(
                self._key,
                _nonce(self._index),
                sealed,
                _aad(self._header_hash, self._index, bool(final)),
            )
        except AuthenticationFailed as exc:
            raise InvalidCiphertextError(_DAMAGED) from exc
        if not final and len(plaintext) != self._header.chunk_size:
            raise InvalidCiphertextError(_DAMAGED)
        self._index += 1
        self._final_seen = bool(final)
        return plaintext
