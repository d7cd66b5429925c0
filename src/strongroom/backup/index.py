"""Index files (format v1): which pack holds each blob, sealed under the index secret.

Body (zstd-compressed, then sealed as kind ``I``, see :mod:`strongroom.backup.sealed`)::

    version 0x01 | u32 pack count | per pack: name (32) | u32 n | n pack entries
    pack entry = u32 index | type u8 | compression u8 | blob id (32) | offset u32
                 | stored length u32 | plain length u32                      (50 bytes)

An index is a cache of pack headers: ``check`` compares it with them. Writers read it
to deduplicate, so it is under the index secret, which a write-only agent holds.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from strongroom.backup.errors import CorruptError
from strongroom.backup.pack import PackEntry

VERSION = 1
ROW = struct.Struct(">IBB32sIII")
_CORRUPT = "An index file is corrupt."


@dataclass(frozen=True, slots=True)
class Location:
    """Where a blob is: its pack (hex name) and its row in that pack's header."""

    pack: str
    entry: PackEntry


def encode_index(packs: Mapping[str, Iterable[PackEntry]]) -> bytes:
    """The body of an index file listing ``packs`` (sorted by name, for reproducibility)."""
    out = [struct.pack(">BI", VERSION, len(packs))]
    for name in sorted(packs):
        rows = list(packs[name])
        out.append(bytes.fromhex(name) + struct.pack(">I", len(rows)))
        out.extend(
            ROW.pack(e.index, e.kind, e.compression, e.blob_id, e.offset, e.length, e.plain_length)
            for e in rows
        )
    return b"".join(out)


def decode_index(body: bytes) -> dict[str, list[PackEntry]]:
    """Parse an index body; :class:`CorruptError` if it is malformed."""
    try:
        version, count = struct.unpack_from(">BI", body)
        if version != VERSION:
            raise CorruptError(_CORRUPT)
        pos = 5
        packs: dict[str, list[PackEntry]] = {}
        for _ in range(count):
            name = body[pos : pos + 32].hex()
            (n,) = struct.unpack_from(">I", body, pos + 32)
            pos += 36
            if len(name) != 64 or pos + n * ROW.size > len(body):
                raise CorruptError(_CORRUPT)
            rows = []
            for _ in range(n):
                rows.append(PackEntry(*ROW.unpack_from(body, pos)))
                pos += ROW.size
            packs[name] = rows
        if pos != len(body):
            raise CorruptError(_CORRUPT)
        return packs
    except struct.error as exc:
        raise CorruptError(_CORRUPT) from exc


class Index:
    """The in-memory index of a repository: blob id -> location (thread-safe adds)."""

    def __init__(self) -> None:
        self._blobs: dict[bytes, Location] = {}
        self._packs: dict[str, list[PackEntry]] = {}
        self._lock = threading.Lock()

    def add_pack(self, name: str, entries: Iterable[PackEntry]) -> None:
        """Record every blob of pack ``name`` (a blob already known keeps its first place)."""
        rows = list(entries)
        with self._lock:
            self._packs[name] = rows
            for entry in rows:
                self._blobs.setdefault(entry.blob_id, Location(name, entry))

    def __contains__(self, blob_id: object) -> bool:
        return blob_id in self._blobs

    def get(self, blob_id: bytes) -> Location | None:
        """Where ``blob_id`` is, if known."""
        return self._blobs.get(blob_id)

    def packs(self) -> dict[str, list[PackEntry]]:
        """Every pack and its rows (a copy)."""
        with self._lock:
            return dict(self._packs)

    def __len__(self) -> int:
        return len(self._blobs)

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._blobs))
