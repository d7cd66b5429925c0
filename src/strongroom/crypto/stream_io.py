"""Chunked streams (version 1) over file objects and buffers: the loops and the geometry.

Still pure: bytes and caller-supplied file objects in and out, nothing else. Streaming
works in constant memory (one plaintext and one ciphertext chunk buffer); a chunk's
plaintext reaches ``dst`` only after that chunk has verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from strongroom.crypto.hazmat import TAG_BYTES
from strongroom.crypto.stream import (
    MIN_CHUNK_SIZE,
    InvalidStream,
    StreamHeader,
    StreamOpener,
    StreamSealer,
    parse_header,
    read_header,
)

Unwrap = Callable[[StreamHeader], bytes]
"""Turns a (not yet authenticated) header into the data key: key id + wrapped key + context."""


class Readable(Protocol):
    """A binary source: ``readinto`` returns the bytes read, 0 (or ``None``) at the end."""

    def readinto(self, buffer: memoryview, /) -> int | None:
        """Read into ``buffer``."""


class Writable(Protocol):
    """A binary sink; ``write`` must consume (copy) the bytes before it returns."""

    def write(self, data: memoryview, /) -> int | None:
        """Write ``data``, or a prefix of it, returning how much was written."""


class SeekableReadable(Readable, Protocol):
    """A binary source that can seek (random access)."""

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move to ``offset`` relative to ``whence``; return the new position."""


def read_full(src: Readable, view: memoryview) -> int:
    """Fill ``view`` from ``src``; return how much was read (less only at the end)."""
    filled = 0
    size = len(view)
    while filled < size:
        got = src.readinto(view[filled:])
        if not got:
            break
        filled += got
    return filled


def write_all(dst: Writable, view: memoryview) -> None:
    """Write all of ``view`` to ``dst``, looping over short writes."""
    while len(view):
        written = dst.write(view)
        if written is None:
            raise BlockingIOError("the destination would block")
        view = view[written:]


def reader_of(src: Readable) -> Callable[[int], bytes]:
    """Adapt ``src`` to ``read(n)``: exactly ``n`` bytes, or fewer at the end."""

    def read(n: int) -> bytes:
        buf = bytearray(n)
        return bytes(buf[: read_full(src, memoryview(buf))])

    return read


@dataclass(frozen=True, slots=True)
class StreamLayout:
    """Where each chunk of a stream lies, given its header and total ciphertext length."""

    header_size: int
    chunk_size: int
    final_index: int
    final_length: int

    @classmethod
    def of(cls, header: StreamHeader, total_length: int) -> StreamLayout:
        """Work out the chunk layout; :class:`InvalidStream` if no stream is that long."""
        size = header.chunk_size
        body = total_length - header.size - TAG_BYTES
        if body < 0:
            raise InvalidStream
        final_index, final_length = divmod(body, size + TAG_BYTES)
        if final_length >= size:
            raise InvalidStream
        return cls(header.size, size, final_index, final_length)

    @staticmethod
    def ciphertext_length(header_size: int, chunk_size: int, plaintext_length: int) -> int:
        """Total stream length for a plaintext of ``plaintext_length`` bytes."""
        chunks = plaintext_length // chunk_size + 1
        return header_size + plaintext_length + chunks * TAG_BYTES

    @property
    def plaintext_length(self) -> int:
        """Plaintext bytes in the whole stream (trusted once the final chunk verified)."""
        return self.final_index * self.chunk_size + self.final_length

    def chunk_span(self, index: int) -> tuple[int, int]:
        """Offset and length of chunk ``index``'s ciphertext (tag included)."""
        if not 0 <= index <= self.final_index:
            raise IndexError("no such chunk")
        offset = self.header_size + index * (self.chunk_size + TAG_BYTES)
        length = self.final_length if index == self.final_index else self.chunk_size
        return offset, length + TAG_BYTES

    def chunks_for(self, start: int, stop: int) -> range:
        """Indices of the chunks holding plaintext bytes [start, stop)."""
        stop = min(stop, self.plaintext_length)
        if start >= stop:
            return range(0)
        return range(start // self.chunk_size, (stop - 1) // self.chunk_size + 1)


def encrypt_file(src: Readable, dst: Writable, sealer: StreamSealer) -> int:
    """Write the header and every chunk of ``src`` to ``dst``; return the plaintext length."""
    size = sealer.chunk_size
    inbuf = memoryview(bytearray(size))
    outbuf = memoryview(bytearray(size + TAG_BYTES))
    write_all(dst, memoryview(sealer.header.raw))
    total = 0
    while True:
        got = read_full(src, inbuf)
        final = got < size
        written = sealer.seal_into(inbuf[:got], final, outbuf[: got + TAG_BYTES])
        write_all(dst, outbuf[:written])
        total += got
        if final:
            return total


def decrypt_file(
    src: Readable, dst: Writable, unwrap: Unwrap, *, min_chunk_size: int = MIN_CHUNK_SIZE
) -> StreamHeader:
    """Verify and decrypt a stream from ``src`` to ``dst``; return its header.

    Reads ``src`` to its end: if it holds anything after the final chunk, the last chunk
    read does not verify. Raises :class:`InvalidStream` (after the plaintext of
    every chunk that did verify was written) or whatever ``unwrap`` raises.
    """
    header = read_header(reader_of(src), min_chunk_size)
    opener = StreamOpener(header, unwrap(header))
    size = header.chunk_size
    inbuf = memoryview(bytearray(size + TAG_BYTES))
    outbuf = memoryview(bytearray(size))
    index = 0
    while True:
        got = read_full(src, inbuf)
        final = got < size + TAG_BYTES
        if got < TAG_BYTES:
            raise InvalidStream
        length = opener.open_into(index, inbuf[:got], final, outbuf[: got - TAG_BYTES])
        write_all(dst, outbuf[:length])
        if final:
            return header
        index += 1


def encrypt_buffer_into(
    plaintext: bytes | bytearray | memoryview, sealer: StreamSealer, out: memoryview
) -> int:
    """Encrypt a whole in-memory plaintext into ``out``; return the bytes written.

    ``out`` must hold at least :meth:`StreamLayout.ciphertext_length` bytes.
    """
    data = memoryview(plaintext).cast("B")
    size = sealer.chunk_size
    header = sealer.header.raw
    total = StreamLayout.ciphertext_length(len(header), size, len(data))
    if len(out) < total:
        raise ValueError("output buffer too small")
    out[: len(header)] = header
    offset = len(header)
    full = len(data) // size
    for index in range(full + 1):
        chunk = data[index * size : (index + 1) * size] if index < full else data[full * size :]
        offset += sealer.seal_into(
            chunk, index == full, out[offset : offset + len(chunk) + TAG_BYTES]
        )
    return offset


def encrypt_buffer(plaintext: bytes | bytearray | memoryview, sealer: StreamSealer) -> bytearray:
    """Encrypt a whole in-memory plaintext into one new buffer."""
    length = memoryview(plaintext).nbytes
    out = bytearray(StreamLayout.ciphertext_length(sealer.header.size, sealer.chunk_size, length))
    encrypt_buffer_into(plaintext, sealer, memoryview(out))
    return out


def decrypt_buffer_into(
    data: bytes | bytearray | memoryview,
    unwrap: Unwrap,
    out: memoryview,
    *,
    min_chunk_size: int = MIN_CHUNK_SIZE,
) -> tuple[StreamHeader, int]:
    """Verify and decrypt a whole in-memory stream into ``out``; return header and length.

    All or nothing: on any failure whatever was written to ``out`` is zeroed. ``out`` must
    hold at least the plaintext length (:attr:`StreamLayout.plaintext_length`).
    """
    view = memoryview(data).cast("B")
    header = parse_header(view, min_chunk_size)
    opener = StreamOpener(header, unwrap(header))
    layout = StreamLayout.of(header, len(view))
    total = layout.plaintext_length
    if len(out) < total:
        raise ValueError("output buffer too small")
    size = header.chunk_size
    try:
        for index in range(layout.final_index + 1):
            offset, length = layout.chunk_span(index)
            start = index * size
            opener.open_into(
                index,
                view[offset : offset + length],
                index == layout.final_index,
                out[start : start + length - TAG_BYTES],
            )
    except InvalidStream:
        out[:total] = bytes(total)
        raise
    return header, total


def decrypt_buffer(
    data: bytes | bytearray | memoryview,
    unwrap: Unwrap,
    *,
    min_chunk_size: int = MIN_CHUNK_SIZE,
) -> tuple[StreamHeader, bytearray]:
    """Verify and decrypt a whole in-memory stream; return its header and plaintext."""
    view = memoryview(data).cast("B")
    layout = StreamLayout.of(parse_header(view, min_chunk_size), len(view))
    out = bytearray(layout.plaintext_length)
    header, _ = decrypt_buffer_into(view, unwrap, memoryview(out), min_chunk_size=min_chunk_size)
    return header, out
