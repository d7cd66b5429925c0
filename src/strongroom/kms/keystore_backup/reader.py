"""Reading a keystore backup back, chunk by chunk, checking every chunk before use."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

from strongroom.crypto.hazmat import (
    TAG_BYTES,
    AuthenticationFailed,
    aes_gcm_decrypt,
)
from strongroom.errors import InvalidCiphertextError
from strongroom.kms.keystore_backup.format import (
    AUDIT,
    CHUNK_HEAD,
    DAMAGED,
    END,
    HASH_BYTES,
    MAX_META_BYTES,
    MAX_VALUE_BYTES,
    META,
    RECORD,
    U16,
    U32,
    U64,
    BackupHeader,
    StoreEntry,
    check_key,
    chunk_aad,
    chunk_nonce,
)
from strongroom.ports import AuditRecord


class BackupReader:
    """Stream the entries of a backup whose header was read with :func:`read_header`.

    ``source`` must be positioned right after the header. Iterating yields
    :class:`StoreEntry` and :class:`~strongroom.ports.AuditRecord` values in file
    order; the iteration ends only after END, the final chunk and end of file were all
    seen and the counts matched. ``meta`` is the META object. Memory use is one chunk.
    """

    def __init__(self, source: BinaryIO, header: BackupHeader, key: bytes) -> None:
        check_key(key)
        self._source = source
        self._header = header
        self._key = key
        self._header_hash = hashlib.sha256(header.raw).digest()
        self._buffer = b""
        self._pos = 0
        self._index = 0
        self._final_seen = False
        if self._take(1)[0] != META:
            raise InvalidCiphertextError(DAMAGED)
        size = U32.unpack(self._take(4))[0]
        if size > MAX_META_BYTES:
            raise InvalidCiphertextError(DAMAGED)
        try:
            meta = json.loads(self._take(size))
        except ValueError as exc:
            raise InvalidCiphertextError(DAMAGED) from exc
        if not isinstance(meta, dict):
            raise InvalidCiphertextError(DAMAGED)
        self.meta: dict[str, Any] = meta

    def __repr__(self) -> str:
        return f"BackupReader(chunk={self._index})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a backup reader holds a key and cannot be pickled")

    def __iter__(self) -> Iterator[StoreEntry | AuditRecord]:
        records = audit = 0
        while True:
            tag = self._take(1)[0]
            if tag == RECORD:
                tenant = self._text(U16)
                kind = self._text(U16)
                name = self._text(U32)
                yield StoreEntry(tenant, kind, name, self._sized(U32))
                records += 1
            elif tag == AUDIT:
                seq = U64.unpack(self._take(8))[0]
                prev_hash = self._take(HASH_BYTES)
                digest = self._take(HASH_BYTES)
                yield AuditRecord(seq, self._sized(U32), prev_hash, digest)
                audit += 1
            elif tag == END:
                counts = (U64.unpack(self._take(8))[0], U64.unpack(self._take(8))[0])
                if counts != (records, audit) or self._pos != len(self._buffer):
                    raise InvalidCiphertextError(DAMAGED)
                if not self._final_seen or self._source.read(1):
                    raise InvalidCiphertextError(DAMAGED)
                return
            else:
                raise InvalidCiphertextError(DAMAGED)

    def _text(self, length: struct.Struct) -> str:
        try:
            return self._sized(length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidCiphertextError(DAMAGED) from exc

    def _sized(self, length: struct.Struct) -> bytes:
        size = length.unpack(self._take(length.size))[0]
        if size > MAX_VALUE_BYTES:
            raise InvalidCiphertextError(DAMAGED)
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
            raise InvalidCiphertextError(DAMAGED)
        head = self._source.read(CHUNK_HEAD.size)
        if len(head) != CHUNK_HEAD.size:
            raise InvalidCiphertextError(DAMAGED)
        final, length = CHUNK_HEAD.unpack(head)
        if final not in (0, 1) or not TAG_BYTES < length <= self._header.chunk_size + TAG_BYTES:
            raise InvalidCiphertextError(DAMAGED)
        sealed = self._source.read(length)
        if len(sealed) != length:
            raise InvalidCiphertextError(DAMAGED)
        try:
            plaintext = aes_gcm_decrypt(
                self._key,
                chunk_nonce(self._index),
                sealed,
                chunk_aad(self._header_hash, self._index, bool(final)),
            )
        except AuthenticationFailed as exc:
            raise InvalidCiphertextError(DAMAGED) from exc
        if not final and len(plaintext) != self._header.chunk_size:
            raise InvalidCiphertextError(DAMAGED)
        self._index += 1
        self._final_seen = bool(final)
        return plaintext
