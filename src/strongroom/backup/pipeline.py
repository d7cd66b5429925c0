"""The chunk pipeline of ``backup create``: a source cut into chunks, each saved on a pool.

The calling thread reads and cuts (content-defined, :class:`~strongroom.backup.chunker.Chunker`);
each chunk goes to a thread pool that hashes it (HMAC-SHA256), compresses it and packs it
(:class:`~strongroom.backup.packer.Packer`). Hashing, zstd and AES-GCM release the GIL, so
the threads run in parallel. In-flight bytes are bounded (:class:`ByteBudget`), so memory
stays flat whatever the source size. A chunk of zeros (a hole) is a run length, not a blob.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from strongroom.backup.chunker import Chunker
from strongroom.backup.keyring import IndexKeys
from strongroom.backup.pack import TYPE_DATA
from strongroom.backup.packer import Packer

SEGMENT = 16 << 20
"""Bytes read from a source at a time."""
MAX_INFLIGHT = 48 << 20
"""Bytes of chunks read but not yet saved, at most (one chunk larger still passes)."""

Progress = Callable[[int], None]

ZEROS = bytes(16 << 20)
"""A zero buffer at least as long as the largest chunk."""


class ByteBudget:
    """Blocks the reader while too many bytes wait in the pool."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._cond = threading.Condition()

    def take(self, n: int) -> None:
        """Wait until ``n`` bytes fit (a single item larger than the limit still passes)."""
        with self._cond:
            while self._used and self._used + n > self._limit:
                self._cond.wait()
            self._used += n

    def give(self, n: int) -> None:
        """Return ``n`` bytes."""
        with self._cond:
            self._used -= n
            self._cond.notify_all()


def is_zero(data: memoryview) -> bool:
    """Whether a chunk is all zero bytes (a hole of a sparse file)."""
    n = len(data)
    return data[0] == 0 and data[n - 1] == 0 and ZEROS.startswith(data)


def done_future(value: bytes | int) -> Future[bytes | int]:
    """A future that already holds ``value`` (a zero run needs no work)."""
    future: Future[bytes | int] = Future()
    future.set_result(value)
    return future


class ChunkPipeline:
    """Chunks of sources, saved as data blobs by a pool (:meth:`close` shuts it down).

    Each read returns one future per content item: a blob id, or the length of a run of
    zeros. ``bytes_read`` counts the bytes read from sources (holes skipped are not read).
    """

    def __init__(
        self,
        keys: IndexKeys,
        packer: Packer,
        chunker: Chunker,
        *,
        threads: int = 2,
        progress: Progress | None = None,
    ) -> None:
        self.bytes_read = 0
        self._keys = keys
        self._packer = packer
        self._chunker = chunker
        self._progress = progress or (lambda n: None)
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="backup")
        self._budget = ByteBudget(MAX_INFLIGHT)

    def close(self) -> None:
        """Wait for running chunks; cancel the queued ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _chunk_job(self, data: memoryview) -> bytes | int:
        try:
            if is_zero(data):
                return len(data)
            blob_id = self._keys.data_id(data)
            self._packer.save(TYPE_DATA, blob_id, data)
            return blob_id
        finally:
            self._budget.give(len(data))
            self._progress(len(data))

    def _submit(self, data: memoryview) -> Future[bytes | int]:
        self._budget.take(len(data))
        return self._pool.submit(self._chunk_job, data)

    def read_stream(self, src: BinaryIO, size: int | None = None) -> list[Future[bytes | int]]:
        """Chunk everything ``src`` holds (up to ``size`` bytes when known)."""
        futures: list[Future[bytes | int]] = []
        pending = b""
        done = 0
        while True:
            want = SEGMENT if size is None else min(SEGMENT, max(size - done, 0))
            data = src.read(want) if want else b""
            done += len(data)
            eof = not data or (size is not None and done >= size)
            buf = pending + data if pending else data
            if not buf:
                break
            view = memoryview(buf)
            cuts = list(self._chunker.cut(buf))
            if not eof:
                *cuts, (last, _) = cuts
                pending = bytes(view[last:])
            else:
                pending = b""
            futures.extend(self._submit(view[off : off + n]) for off, n in cuts)
            self.bytes_read += len(data)
            if eof and not pending:
                break
        return futures

    def read_sparse(self, src: BinaryIO, size: int) -> list[Future[bytes | int]]:
        """Chunk only the data extents of a sparse file; holes become zero runs."""
        fd = src.fileno()
        items: list[Future[bytes | int]] = []
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole remains
                data = size
            if data > pos:
                items.append(done_future(min(data, size) - pos))
                self._progress(min(data, size) - pos)
                pos = min(data, size)
                continue
            end = min(os.lseek(fd, pos, os.SEEK_HOLE), size)
            os.lseek(fd, pos, os.SEEK_SET)
            items.extend(self.read_stream(src, end - pos))
            pos = end
        return items
