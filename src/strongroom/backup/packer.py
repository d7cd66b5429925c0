"""Blobs into packs, from many threads: dedup, compress, encrypt, write, index.

:class:`Packer` is shared by the worker threads of one ``create`` run. A blob already in
the repository's index (or saved earlier in this run) is skipped; a new one is
compressed (zstd, outside any lock: zstandard releases the GIL), then encrypted into the
current pack (AES-GCM, fast, under the pack lock). A full pack is written by the thread
that filled it; every :data:`INDEX_EVERY` packs an index file is written, so a crash
loses little and a retry deduplicates against what was saved.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import zstandard

from strongroom.backup.index import Index
from strongroom.backup.keyring import SessionKey
from strongroom.backup.pack import COMP_NONE, COMP_ZSTD, PackBuilder, PackEntry
from strongroom.backup.repository import Repository, pack_name

INDEX_EVERY = 64
SAMPLE_BYTES = 64 << 10
"""Compress a sample this large first: incompressible data is then stored raw, cheaply."""
INCOMPRESSIBLE = 0.97


@dataclass(slots=True)
class PackerStats:
    """What one run added."""

    blobs_added: int = 0
    bytes_added: int = 0
    stored_bytes: int = 0
    packs: int = 0
    pack_names: list[str] = field(default_factory=list)


class Packer:
    """Saves blobs of one session into packs (thread-safe)."""

    def __init__(self, repo: Repository, index: Index, session: SessionKey) -> None:
        self._repo = repo
        self._index = index
        self._session = session
        self._level = repo.config.zstd_level
        self._pack_size = repo.config.pack_size
        self._local = threading.local()
        self._seen: set[bytes] = set()
        self._seen_lock = threading.Lock()
        self._pack_lock = threading.Lock()
        self._builder = PackBuilder(session)
        self._unindexed: dict[str, list[PackEntry]] = {}
        self._index_lock = threading.Lock()
        self.stats = PackerStats()

    def _compressor(self) -> zstandard.ZstdCompressor:
        found: zstandard.ZstdCompressor | None = getattr(self._local, "zstd", None)
        if found is None:
            found = zstandard.ZstdCompressor(level=self._level)
            self._local.zstd = found
        return found

    def compress(self, data: bytes | memoryview) -> tuple[int, bytes | memoryview]:
        """``(compression, body)``: zstd unless a sample shows the data will not shrink."""
        zstd = self._compressor()
        if len(data) > 2 * SAMPLE_BYTES:
            sample = zstd.compress(data[:SAMPLE_BYTES])
            if len(sample) > INCOMPRESSIBLE * SAMPLE_BYTES:
                return COMP_NONE, data
        packed = zstd.compress(data)
        if len(packed) >= len(data):
            return COMP_NONE, data
        return COMP_ZSTD, packed

    def save(self, kind: int, blob_id: bytes, data: bytes | memoryview) -> bool:
        """Store a blob unless the repository has it; whether it was new."""
        with self._seen_lock:
            if blob_id in self._seen or blob_id in self._index:
                return False
            self._seen.add(blob_id)
        compression, body = self.compress(data)
        full: PackBuilder | None = None
        with self._pack_lock:
            self._builder.add(kind, compression, blob_id, len(data), body)
            self.stats.blobs_added += 1
            self.stats.bytes_added += len(data)
            if self._builder.size >= self._pack_size:
                full, self._builder = self._builder, PackBuilder(self._session)
        if full is not None:
            self._write(full)
        return True

    def _write(self, builder: PackBuilder) -> None:
        name, data = builder.finish()
        self._repo.store.put(pack_name(name), data)
        index_now: dict[str, list[PackEntry]] | None = None
        with self._index_lock:
            self._unindexed[name] = builder.entries
            self.stats.packs += 1
            self.stats.stored_bytes += len(data)
            self.stats.pack_names.append(name)
            if len(self._unindexed) >= INDEX_EVERY:
                index_now, self._unindexed = self._unindexed, {}
        if index_now is not None:
            self._repo.save_index(index_now)
        self._index.add_pack(name, builder.entries)

    def flush(self) -> None:
        """Write the last pack and an index file for every pack not yet indexed."""
        with self._pack_lock:
            builder, self._builder = self._builder, PackBuilder(self._session)
        if builder.entries:
            self._write(builder)
        with self._index_lock:
            rest, self._unindexed = self._unindexed, {}
        if rest:
            self._repo.save_index(rest)
