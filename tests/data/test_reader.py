"""EncryptedFile: random access that opens only the chunks it needs, and verifies the end."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.stream import parse_header
from strongroom.data import EncryptedFile, InProcessDataKeys, encrypt_stream
from strongroom.errors import InvalidCiphertextError

C = 1 << 16
KEY = bytes(range(32))
LENGTHS = [0, 1, C - 1, C, C + 1, 3 * C + 1000]


def unwrap(header: object) -> bytes:
    return KEY


def plaintext_of(length: int) -> bytes:
    return (bytes(range(251)) * (length // 251 + 1))[:length]


def encrypted(length: int, context: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext_of(length)), out, KEY, b"w", "k", context, chunk_size=C)
    return out.getvalue()


STREAMS = {n: encrypted(n) for n in LENGTHS}


class CountingSource(io.BytesIO):
    """A BytesIO that records the ciphertext offsets it was read at."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[tuple[int, int]] = []

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        position = self.tell()
        n = super().readinto(buffer)
        self.reads.append((position, n))
        return n

    def chunks_read(self, header_size: int) -> set[int]:
        return {
            (pos - header_size) // (C + 16) for pos, n in self.reads if pos >= header_size and n
        }


@settings(max_examples=300, deadline=None)
@given(length=st.sampled_from(LENGTHS), data=st.data())
def test_any_range_reads_the_plaintext_and_opens_only_its_chunks(
    length: int, data: st.DataObject
) -> None:
    plaintext = plaintext_of(length)
    a = data.draw(st.integers(0, length + 10))
    b = data.draw(st.integers(a, length + 10))
    source = CountingSource(STREAMS[length])
    f = EncryptedFile(source, unwrap)
    header_size = f.header.size
    source.reads.clear()
    assert f.seek(a) == a
    assert f.read(b - a) == plaintext[a:b]
    assert f.tell() == (a if a >= length or b == a else min(b, length))
    wanted = {i // C for i in range(a, min(b, length))}
    if b > a and b >= length:
        wanted.add(length // C)  # a read that reaches the end verifies the final chunk
    assert source.chunks_read(header_size) == wanted


@settings(deadline=None)
@given(
    length=st.sampled_from(LENGTHS),
    sizes=st.lists(st.integers(1, 2 * C), min_size=1, max_size=8),
)
def test_sequential_reads_of_any_sizes_reassemble_the_plaintext(
    length: int, sizes: list[int]
) -> None:
    f = EncryptedFile(io.BytesIO(STREAMS[length]), unwrap)
    parts = []
    for size in itertools.cycle(sizes):
        part = f.read(size)
        if not part:
            break
        parts.append(part)
    assert b"".join(parts) == plaintext_of(length)


def test_file_api() -> None:
    length = 3 * C + 1000
    plaintext = plaintext_of(length)
    with EncryptedFile(io.BytesIO(STREAMS[length]), unwrap) as f:
        assert (f.readable(), f.seekable(), f.writable()) == (True, True, False)
        assert f.size == length and f.header.chunk_size == C
        assert f.seek(-10, io.SEEK_END) == length - 10
        assert f.read() == plaintext[-10:]
        assert f.read() == b"" and f.read(5) == b""
        assert f.seek(5) == 5 and f.seek(7, io.SEEK_CUR) == 12 and f.tell() == 12
        buf = bytearray(C + 5)
        assert f.readinto(buf) == C + 5 and bytes(buf) == plaintext[12 : 12 + C + 5]
        f.seek(0)
        assert f.readall() == plaintext
        assert f.seek(length + 100) == length + 100 and f.read(10) == b""
        with pytest.raises(ValueError):
            f.seek(-1)
        with pytest.raises(ValueError):
            f.seek(0, 7)
    with pytest.raises(ValueError):
        f.read(1)
    buffered = io.BufferedReader(EncryptedFile(io.BytesIO(STREAMS[length]), unwrap))
    buffered.seek(C - 3)
    assert buffered.read(6) == plaintext[C - 3 : C + 3]


def test_stream_may_start_inside_the_source() -> None:
    source = io.BytesIO(b"prefix bytes" + STREAMS[C + 1])
    source.seek(12)
    f = EncryptedFile(source, unwrap)
    assert f.read() == plaintext_of(C + 1)


def test_flipped_chunk_fails_only_reads_that_touch_it() -> None:
    length = 3 * C + 1000
    plaintext = plaintext_of(length)
    stream = bytearray(STREAMS[length])
    header_size = parse_header(stream).size
    stream[header_size + (C + 16) + 100] ^= 1  # inside chunk 1
    f = EncryptedFile(io.BytesIO(bytes(stream)), unwrap)
    assert f.read(C) == plaintext[:C]
    with pytest.raises(InvalidCiphertextError):
        f.read(1)
    f.seek(2 * C)
    assert f.read(C) == plaintext[2 * C : 3 * C]
    f.seek(C - 1)
    with pytest.raises(InvalidCiphertextError):
        f.read(2)
    f.seek(0)
    with pytest.raises(InvalidCiphertextError):
        f.read()


@pytest.mark.parametrize("length", [C, 3 * C + 1000])
def test_truncated_or_extended_files_fail_at_open_or_at_the_end(length: int) -> None:
    stream = STREAMS[length]
    header_size = parse_header(stream).size
    cuts = {len(stream) - 1, len(stream) - 16, header_size + C + 16, header_size + 5}
    for damaged in [stream[:cut] for cut in cuts] + [stream + b"\x00", stream + bytes(C + 16)]:
        with pytest.raises(InvalidCiphertextError):
            f = EncryptedFile(io.BytesIO(damaged), unwrap)
            f.seek(0)
            f.read()
        # Even a zero-length read at what looks like the end checks the final chunk.
        with pytest.raises(InvalidCiphertextError):
            f = EncryptedFile(io.BytesIO(damaged), unwrap)
            f.seek(f.size)
            f.read(1)


def test_header_damage_fails_at_open() -> None:
    stream = bytearray(STREAMS[1])
    for position in (0, 8, 50, parse_header(stream).size - 1):
        damaged = bytearray(stream)
        damaged[position] ^= 0x40
        with pytest.raises(InvalidCiphertextError):
            EncryptedFile(io.BytesIO(bytes(damaged)), unwrap)


def test_context_and_key_service(alice_keys: InProcessDataKeys, alice_key: str) -> None:
    out = io.BytesIO()
    context = {"object": "a"}
    encrypt_stream(
        io.BytesIO(plaintext_of(C + 7)),
        out,
        alice_keys,
        key_id=alice_key,
        context=context,
        chunk_size=C,
    )
    f = EncryptedFile(io.BytesIO(out.getvalue()), alice_keys, context=context)
    f.seek(C)
    assert f.read() == plaintext_of(C + 7)[C:]
    with pytest.raises(InvalidCiphertextError):
        EncryptedFile(io.BytesIO(out.getvalue()), alice_keys, context={"object": "b"})


@pytest.mark.parametrize("length", [0, C, 3 * C + 1000])
def test_zero_length_reads_open_nothing_and_reads_at_the_end_verify_it(length: int) -> None:
    source = CountingSource(STREAMS[length])
    f = EncryptedFile(source, unwrap)
    source.reads.clear()
    for position in (0, length, length + 3):
        f.seek(position)
        assert f.read(0) == b""
    assert source.chunks_read(f.header.size) == set()
    f.seek(length)
    assert f.read(1) == b""
    assert source.chunks_read(f.header.size) == {length // C}
