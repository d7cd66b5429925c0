"""Writing a keystore backup: header and META, records and audit events, END; chunked."""

from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO

from strongroom.crypto.hazmat import (
    aes_gcm_encrypt,
)
from strongroom.errors import ValidationError
from strongroom.kms.keystore_backup.format import (
    AUDIT,
    CHUNK_HEAD,
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
    BackupSummary,
    check_key,
    chunk_aad,
    chunk_nonce,
)
from strongroom.ports import AuditRecord


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
        check_key(key)
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
        self._append(bytes((META,)) + U32.pack(len(body)) + body)

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
                    bytes((RECORD,)),
                    U16.pack(len(t)),
                    t,
                    U16.pack(len(k)),
                    k,
                    U32.pack(len(n)),
                    n,
                    U32.pack(len(value)),
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
            bytes((AUDIT,))
            + U64.pack(record.seq)
            + record.prev_hash
            + record.hash
            + U32.pack(len(record.body))
            + record.body
        )
        self._audit += 1

    def finish(self) -> BackupSummary:
        """Write END and the final chunk; return what the backup holds."""
        if self._finished:
            raise ValidationError("the backup is finished already")
        self._buffer += bytes((END,)) + U64.pack(self._records) + U64.pack(self._audit)
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
            chunk_nonce(self._index),
            plaintext,
            chunk_aad(self._header_hash, self._index, final),
        )
        self._sink.write(CHUNK_HEAD.pack(int(final), len(sealed)) + sealed)
        self._index += 1
