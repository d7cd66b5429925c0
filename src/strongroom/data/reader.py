"""Random access to an encrypted stream: a read-only, seekable file of its plaintext."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

from strongroom.crypto.hazmat import TAG_BYTES
from strongroom.crypto.stream import InvalidStream, StreamHeader, StreamOpener, read_header
from strongroom.crypto.stream_io import SeekableReadable, StreamLayout, read_full, reader_of
from strongroom.data.streams import KeySource, stream_errors, unwrapper

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class EncryptedFile(io.RawIOBase):
    """The plaintext of an encrypted stream, read on demand from a seekable file object.

    The stream starts at the source's current position and runs to its end. Opening checks
    the key commitment and the header MAC (and asks the key source for the data key once).
    Reading bytes [a, b) reads and verifies only the chunks that hold them; the chunk last
    opened stays cached. A read that reaches the end of the plaintext (or starts there)
    verifies the final chunk first, so a truncated or extended stream never passes for a
    shorter one. Every failure is :class:`~strongroom.errors.InvalidCiphertextError`.
    The source is not closed by :meth:`close`.
    """

    def __init__(
        self,
        src: SeekableReadable,
        key: KeySource,
        *,
        context: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self._src = src
        self._start = src.seek(0, io.SEEK_CUR)
        with stream_errors():
            header = read_header(reader_of(src))
            self._opener = StreamOpener(header, unwrapper(key, context)(header))
            self._layout = StreamLayout.of(header, src.seek(0, io.SEEK_END) - self._start)
        self._pos = 0
        self._index = -1
        self._chunk = memoryview(b"")
        self._final_verified = False

    @property
    def header(self) -> StreamHeader:
        """The stream's header (authenticated): key id, wrapped key, context, chunk size."""
        return self._opener.header

    @property
    def size(self) -> int:
        """Plaintext length, from the ciphertext length; confirmed when the end is read."""
        return self._layout.plaintext_length

    def readable(self) -> bool:
        """Always true."""
        return True

    def seekable(self) -> bool:
        """Always true."""
        return True

    def writable(self) -> bool:
        """Always false: streams are immutable."""
        return False

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        """Move to a plaintext position (``whence`` as in :meth:`io.IOBase.seek`)."""
        self._check_open()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError("invalid whence")
        if target < 0:
            raise ValueError("negative seek position")
        self._pos = target
        return target

    def tell(self) -> int:
        """The current plaintext position."""
        self._check_open()
        return self._pos

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Fill ``buffer`` from the current position; fewer bytes only at the end."""
        self._check_open()
        view = memoryview(buffer).cast("B")
        want = len(view)
        size = self._layout.chunk_size
        total = self.size
        done = 0
        while done < want and self._pos < total:
            index = self._pos // size
            chunk = self._chunk_at(index)
            start = self._pos - index * size
            take = min(want - done, len(chunk) - start)
            view[done : done + take] = chunk[start : start + take]
            done += take
            self._pos += take
        if want and self._pos >= total and not self._final_verified:
            self._chunk_at(self._layout.final_index)
        return done

    def read(self, size: int | None = -1, /) -> bytes:
        """Read up to ``size`` bytes (all that is left if negative or ``None``)."""
        self._check_open()
        remaining = max(self.size - self._pos, 0)
        # Never allocate past the end: read(10**9) on a small object is a small read.
        # read(0) reads nothing, so it opens nothing (not even the final chunk).
        to_end = size is None or size < 0 or (size > 0 and size >= remaining)
        if to_end or size is None:
            size = remaining
        if size == 0:
            if to_end and not self._final_verified:
                self._chunk_at(self._layout.final_index)
            return b""
        buf = bytearray(size)
        got = self.readinto(buf)
        return bytes(buf[:got])

    def readall(self) -> bytes:
        """Read everything from the current position to the end."""
        return self.read(-1)

    def close(self) -> None:
        """Drop the cached chunk; the source stays open."""
        self._chunk = memoryview(b"")
        self._index = -1
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")

    def _chunk_at(self, index: int) -> memoryview:
        if index == self._index:
            return self._chunk
        offset, length = self._layout.chunk_span(index)
        final = index == self._layout.final_index
        ciphertext = bytearray(length)
        plaintext = bytearray(length - TAG_BYTES)
        with stream_errors():
            self._src.seek(self._start + offset)
            if read_full(self._src, memoryview(ciphertext)) != length:
                raise InvalidStream
            self._opener.open_into(index, ciphertext, final, memoryview(plaintext))
        self._index, self._chunk = index, memoryview(plaintext)
        self._final_verified = self._final_verified or final
        return self._chunk
