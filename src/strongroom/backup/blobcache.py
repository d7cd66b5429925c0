"""Verified blobs for random reads (``backup mount``): fetched one by one, kept a while.

:class:`VerifiedBlobs` reads a blob with one ranged read, opens it with
:meth:`Repository.blob_opener` (AES-GCM binds it to its pack, place and id; then zstd; then
its keyed id is checked), and keeps the most recently used plaintexts up to a byte budget,
so sequential reads through a chunk do not fetch it again. Each pack's prefix is read (and
its commitment checked) once, not before every chunk: half the requests to an S3
repository. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from strongroom.backup.index import Location
from strongroom.backup.pack import PREFIX, PackEntry, PackPrefix
from strongroom.backup.repository import Repository, pack_name

BLOB_CACHE_BYTES = 64 << 20
OPENER_CACHE = 1024

Opener = Callable[[PackEntry, bytes | memoryview], bytes]


class VerifiedBlobs:
    """Blob plaintexts by location, each verified before it is returned or kept."""

    def __init__(self, repo: Repository, *, cache_bytes: int = BLOB_CACHE_BYTES) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._blobs: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0
        self._cache_bytes = cache_bytes
        self._openers: OrderedDict[str, Opener] = OrderedDict()

    def get(self, location: Location) -> bytes:
        """The blob at ``location`` (:class:`~strongroom.backup.errors.CorruptError` if bad)."""
        blob_id = location.entry.blob_id
        with self._lock:
            found = self._blobs.get(blob_id)
            if found is not None:
                self._blobs.move_to_end(blob_id)
                return found
        plain = self._read(location)
        with self._lock:
            if blob_id not in self._blobs:
                self._blobs[blob_id] = plain
                self._bytes += len(plain)
            while self._bytes > self._cache_bytes and len(self._blobs) > 1:
                _, dropped = self._blobs.popitem(last=False)
                self._bytes -= len(dropped)
        return plain

    def _read(self, location: Location) -> bytes:
        name = pack_name(location.pack)
        with self._lock:
            opener = self._openers.get(location.pack)
        if opener is None:
            prefix = PackPrefix.parse(self.repo.store.get_range(name, 0, PREFIX.size))
            opener = self.repo.blob_opener(prefix)  # checks the pack's commitment
            with self._lock:
                self._openers[location.pack] = opener
                while len(self._openers) > OPENER_CACHE:
                    self._openers.popitem(last=False)
        sealed = self.repo.store.get_range(name, location.entry.offset, location.entry.length)
        return opener(location.entry, sealed)
