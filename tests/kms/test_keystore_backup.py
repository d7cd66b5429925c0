"""The keystore backup format v1: vector, round trips, and every kind of damage."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.crypto.wrap import unwrap_key
from strongroom.errors import InvalidCiphertextError, ValidationError
from strongroom.kms.keystore_backup import (
    MAGIC,
    BackupHeader,
    BackupReader,
    BackupWriter,
    StoreEntry,
    backup_key_identity,
    read_header,
)
from strongroom.ports import AuditRecord

VECTOR = json.loads((Path(__file__).parents[1] / "vectors" / "keystore_backup_v1.json").read_text())
KEY = bytes(range(32))
BACKUP_ID = bytes(16)
WRAPPED = b"\x01" + bytes(40)


def _write(
    entries: Sequence[StoreEntry | AuditRecord],
    chunk_size: int,
    meta: dict[str, Any] | None = None,
    key: bytes = KEY,
    backup_id: bytes = BACKUP_ID,
) -> bytes:
    out = io.BytesIO()
    writer = BackupWriter(out, key, BackupHeader.build(chunk_size, backup_id, WRAPPED), meta or {})
    for entry in entries:
        if isinstance(entry, StoreEntry):
            writer.add_record(entry.tenant, entry.kind, entry.name, entry.value)
        else:
            writer.add_audit(entry)
    summary = writer.finish()
    assert summary.records == sum(isinstance(e, StoreEntry) for e in entries)
    return out.getvalue()


def _read(data: bytes, key: bytes = KEY) -> tuple[dict[str, Any], list[StoreEntry | AuditRecord]]:
    source = io.BytesIO(data)
    header = read_header(source)
    reader = BackupReader(source, header, key)
    return reader.meta, list(reader)


def test_vector_writes_and_reads() -> None:
    v = VECTOR
    backup_id = bytes.fromhex(v["backup_id"])
    key = unwrap_key(
        bytes.fromhex(v["root_key"]),
        bytes.fromhex(v["wrapped_key"]),
        backup_key_identity(backup_id),
    )
    assert key == bytes.fromhex(v["backup_key"])
    records = [
        StoreEntry(r["tenant"], r["kind"], r["name"], bytes.fromhex(r["value"]))
        for r in v["records"]
    ]
    audit = [
        AuditRecord(
            a["seq"],
            bytes.fromhex(a["body"]),
            bytes.fromhex(a["prev_hash"]),
            bytes.fromhex(a["hash"]),
        )
        for a in v["audit"]
    ]
    out = io.BytesIO()
    header = BackupHeader.build(v["chunk_size"], backup_id, bytes.fromhex(v["wrapped_key"]))
    writer = BackupWriter(out, key, header, v["meta"])
    for r in records:
        writer.add_record(r.tenant, r.kind, r.name, r.value)
    for a in audit:
        writer.add_audit(a)
    writer.finish()
    assert out.getvalue().hex() == v["backup"]
    meta, entries = _read(bytes.fromhex(v["backup"]), key)
    assert meta == v["meta"]
    assert entries == [*records, *audit]


names = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)
store_entries = st.builds(StoreEntry, names, names, names, st.binary(max_size=300))
audit_entries = st.builds(
    AuditRecord,
    st.integers(0, 2**64 - 1),
    st.binary(max_size=200),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(store_entries, audit_entries), max_size=30),
    st.integers(16, 300),
    st.dictionaries(st.text(max_size=5), st.integers()),
)
def test_round_trip(
    entries: list[StoreEntry | AuditRecord], chunk_size: int, meta: dict[str, int]
) -> None:
    data = _write(entries, chunk_size, meta)
    got_meta, got = _read(data)
    assert got_meta == meta
    assert got == entries


def _chunks(data: bytes) -> tuple[bytes, list[bytes]]:
    """Split a backup into its header and its framed chunks."""
    source = io.BytesIO(data)
    header = read_header(source)
    chunks = []
    while head := source.read(5):
        length = struct.unpack(">I", head[1:])[0]
        chunks.append(head + source.read(length))
    return header.raw, chunks


SAMPLE = [StoreEntry("t", "key", f"k{i}", bytes([i]) * 40) for i in range(20)]


def test_sample_spans_several_chunks() -> None:
    _, chunks = _chunks(_write(SAMPLE, 64))
    assert len(chunks) > 5
    assert [c[0] for c in chunks] == [0] * (len(chunks) - 1) + [1]


@settings(max_examples=200)
@given(st.data())
def test_any_flipped_bit_fails(data: st.DataObject) -> None:
    blob = bytearray(_write(SAMPLE, 64))
    position = data.draw(st.integers(len(MAGIC), len(blob) - 1))
    blob[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises((InvalidCiphertextError, ValidationError)):
        _read(bytes(blob))


@settings(max_examples=100)
@given(st.data())
def test_any_truncation_fails(data: st.DataObject) -> None:
    blob = _write(SAMPLE, 64)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises((InvalidCiphertextError, ValidationError)):
        _read(blob[:cut])


def test_dropped_reordered_repeated_or_appended_chunks_fail() -> None:
    header, chunks = _chunks(_write(SAMPLE, 64))
    damaged = [
        chunks[:-1],  # final chunk dropped: truncation at a chunk boundary
        chunks[1:],
        [chunks[1], chunks[0], *chunks[2:]],
        [chunks[0], *chunks],
        [*chunks, chunks[-1]],
        [*chunks[:-1], chunks[-1][:1] + b"\x00" * 4],
    ]
    for variant in damaged:
        with pytest.raises(InvalidCiphertextError):
            _read(header + b"".join(variant))
    with pytest.raises(InvalidCiphertextError):
        _read(header + b"".join(chunks) + b"\x00")


def test_chunks_do_not_move_between_backups() -> None:
    other_header, other_chunks = _chunks(_write(SAMPLE, 64, backup_id=b"\x01" * 16))
    header, chunks = _chunks(_write(SAMPLE, 64))
    assert chunks[0] != other_chunks[0]
    with pytest.raises(InvalidCiphertextError):
        _read(header + other_chunks[0] + b"".join(chunks[1:]))
    with pytest.raises(InvalidCiphertextError):  # same key, other header: header hash in AAD
        _read(other_header + b"".join(chunks))


def test_wrong_key_fails() -> None:
    with pytest.raises(InvalidCiphertextError):
        _read(_write(SAMPLE, 64), key=bytes(32))


def test_not_a_backup_and_unknown_version() -> None:
    with pytest.raises(ValidationError, match="not a Strongroom keystore backup"):
        _read(b"PK\x03\x04 a zip file")
    blob = bytearray(_write(SAMPLE, 64))
    blob[len(MAGIC)] = 2
    with pytest.raises(ValidationError, match="version 2"):
        _read(bytes(blob))


def test_limits_are_checked() -> None:
    with pytest.raises(ValidationError):
        BackupHeader.build(8, BACKUP_ID, WRAPPED)
    with pytest.raises(ValidationError):
        BackupHeader.build(64, b"short", WRAPPED)
    writer = BackupWriter(io.BytesIO(), KEY, BackupHeader.build(64, BACKUP_ID, WRAPPED), {})
    with pytest.raises(ValidationError):
        writer.add_audit(AuditRecord(1, b"", b"short", bytes(32)))
    writer.finish()
    with pytest.raises(ValidationError):
        writer.add_record("t", "k", "n", b"")


def test_writer_and_reader_hide_the_key() -> None:
    writer = BackupWriter(io.BytesIO(), KEY, BackupHeader.build(64, BACKUP_ID, WRAPPED), {})
    assert KEY.hex() not in repr(writer)
    entry = StoreEntry("t", "k", "n", b"wrapped-secret")
    assert "wrapped-secret" not in repr(entry)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(writer)
