"""Chunked stream format v1: round trips, geometry, limits and misuse of the core API."""

from __future__ import annotations

import io
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    InvalidStream,
    StreamLayout,
    StreamOpener,
    StreamSealer,
    decrypt_buffer,
    decrypt_file,
    encrypt_buffer,
    encrypt_file,
)
from strongroom.crypto.stream import (
    TEST_MIN_CHUNK_SIZE,
    StreamKeys,
    check_chunk_size,
    parse_header,
)

C = TEST_MIN_CHUNK_SIZE
KEY = bytes(range(32))


def sealer(chunk_size: int = C, salt: bytes | None = None, **kw: object) -> StreamSealer:
    return StreamSealer(
        KEY,
        key_id=str(kw.get("key_id", "key-1")),
        wrapped_key=bytes(kw.get("wrapped", b"wrapped")),  # type: ignore[call-overload]
        context=kw.get("context", {"a": "b"}),  # type: ignore[arg-type]
        chunk_size=chunk_size,
        salt=salt,
        min_chunk_size=TEST_MIN_CHUNK_SIZE,
    )


class Trickle(io.RawIOBase):
    """A source that returns at most ``step`` bytes per read, and a sink that takes as few."""

    def __init__(self, data: bytes = b"", step: int = 3) -> None:
        self.data, self.pos, self.step, self.out = data, 0, step, bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self.step, len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(data), self.step)
        self.out += bytes(data[:n])
        return n


@pytest.mark.parametrize("length", [0, 1, C - 1, C, C + 1, 2 * C - 1, 2 * C, 5 * C + 17])
def test_round_trip_around_chunk_boundaries(length: int) -> None:
    plaintext = bytes(i % 251 for i in range(length))
    seal = sealer()
    stream = bytes(encrypt_buffer(plaintext, seal))
    header = seal.header
    # Every chunk but the final holds C bytes; the final holds fewer, even zero.
    assert len(stream) == header.size + length + (length // C + 1) * 16
    layout = StreamLayout.of(header, len(stream))
    assert (layout.final_index, layout.final_length) == divmod(length, C)
    assert layout.plaintext_length == length
    # File and buffer paths agree byte for byte, and both decrypt.
    out = io.BytesIO()
    assert encrypt_file(io.BytesIO(plaintext), out, sealer(salt=header.salt)) == length
    assert out.getvalue() == stream
    got_header, got = decrypt_buffer(stream, lambda h: KEY, min_chunk_size=C)
    assert (got_header, bytes(got)) == (header, plaintext)
    sink = io.BytesIO()
    assert decrypt_file(io.BytesIO(stream), sink, lambda h: KEY, min_chunk_size=C) == header
    assert sink.getvalue() == plaintext


def test_empty_stream_is_one_empty_final_chunk() -> None:
    seal = sealer()
    stream = encrypt_buffer(b"", seal)
    assert len(stream) == seal.header.size + 16
    assert bytes(decrypt_buffer(stream, lambda h: KEY, min_chunk_size=C)[1]) == b""
    # The header alone (no final chunk) is not a stream.
    with pytest.raises(InvalidStream):
        decrypt_buffer(stream[:-16], lambda h: KEY, min_chunk_size=C)


def test_short_reads_and_short_writes_are_handled() -> None:
    plaintext = bytes(range(200)) * 3
    trickle_out = Trickle(step=5)
    encrypt_file(Trickle(plaintext, 7), trickle_out, seal := sealer())
    assert bytes(trickle_out.out) == bytes(encrypt_buffer(plaintext, sealer(salt=seal.header.salt)))
    sink = Trickle(step=11)
    decrypt_file(Trickle(bytes(trickle_out.out), 2), sink, lambda h: KEY, min_chunk_size=C)
    assert bytes(sink.out) == plaintext


@settings(max_examples=150, deadline=None)
@given(
    plaintext=st.binary(max_size=1000),
    exponent=st.integers(6, 9),
    context=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=4),
    key_id=st.text(min_size=1, max_size=20),
)
def test_round_trip_property(
    plaintext: bytes, exponent: int, context: dict[str, str], key_id: str
) -> None:
    seal = sealer(1 << exponent, context=context, key_id=key_id)
    header, got = decrypt_buffer(encrypt_buffer(plaintext, seal), lambda h: KEY, min_chunk_size=C)
    assert bytes(got) == plaintext
    assert (dict(header.context), header.key_id, header.chunk_size) == (
        context,
        key_id,
        1 << exponent,
    )


def test_each_stream_gets_a_fresh_salt_and_chunk_keys() -> None:
    a, b = encrypt_buffer(bytes(100), sealer()), encrypt_buffer(bytes(100), sealer())
    assert parse_header(a, C).salt != parse_header(b, C).salt
    assert a[-116:] != b[-116:]


def test_layout_rejects_impossible_lengths_and_spans_match() -> None:
    header = sealer().header
    possible = {StreamLayout.ciphertext_length(header.size, C, n) for n in range(6 * C)}
    for total in range(header.size + 6 * (C + 16)):
        if total in possible:
            layout = StreamLayout.of(header, total)
            end = sum(layout.chunk_span(i)[1] for i in range(layout.final_index + 1))
            assert header.size + end == total
        else:
            with pytest.raises(InvalidStream):
                StreamLayout.of(header, total)


@given(st.integers(0, 10 * C), st.integers(0, 10 * C), st.integers(0, 9 * C))
def test_chunks_for_covers_exactly_the_range(start: int, stop: int, length: int) -> None:
    header = sealer().header
    layout = StreamLayout.of(header, StreamLayout.ciphertext_length(header.size, C, length))
    wanted = {i // C for i in range(start, min(stop, length))}
    assert set(layout.chunks_for(start, stop)) == wanted


def test_public_chunk_size_limits() -> None:
    assert check_chunk_size(DEFAULT_CHUNK_SIZE) == 20
    assert check_chunk_size(MIN_CHUNK_SIZE) == 16
    assert check_chunk_size(MAX_CHUNK_SIZE) == 24
    for bad in (0, 1, MIN_CHUNK_SIZE // 2, MIN_CHUNK_SIZE + 1, 3 << 18, MAX_CHUNK_SIZE * 2):
        with pytest.raises(ValueError, match="power of two"):
            check_chunk_size(bad)
    with pytest.raises(ValueError, match="power of two"):
        StreamSealer(KEY, key_id="k", wrapped_key=b"w", chunk_size=C)
    with pytest.raises(ValueError):
        check_chunk_size(16, min_chunk_size=16)
    with pytest.raises(ValueError):
        parse_header(encrypt_buffer(b"", sealer()), min_chunk_size=32)


def test_small_chunk_streams_are_refused_by_default_readers() -> None:
    stream = encrypt_buffer(b"x", sealer())
    with pytest.raises(InvalidStream):
        decrypt_buffer(stream, lambda h: KEY)
    assert bytes(decrypt_buffer(stream, lambda h: KEY, min_chunk_size=C)[1]) == b"x"


def test_default_chunk_size_stream_round_trips() -> None:
    seal = StreamSealer(KEY, key_id="k", wrapped_key=b"w")
    assert seal.chunk_size == 1 << 20
    plaintext = bytes(range(256)) * 4097 * 4  # a little over 4 MiB: five chunks
    stream = encrypt_buffer(plaintext, seal)
    assert bytes(decrypt_buffer(stream, lambda h: KEY)[1]) == plaintext


@pytest.mark.parametrize(
    "kw",
    [{"key_id": ""}, {"key_id": "k" * 2049}, {"wrapped": b""}, {"wrapped": bytes(8193)}],
)
def test_header_field_limits(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sealer(**kw)


def test_bad_key_and_salt_sizes() -> None:
    with pytest.raises(ValueError):
        StreamSealer(KEY[:16], key_id="k", wrapped_key=b"w")
    with pytest.raises(ValueError):
        sealer(salt=bytes(16))
    header = sealer().header
    with pytest.raises(InvalidStream):
        StreamOpener(header, KEY[:31])


def test_sealer_refuses_sequences_that_are_not_streams() -> None:
    seal = sealer()
    with pytest.raises(ValueError):
        seal.seal(bytes(C - 1), final=False)  # a non-final chunk must be full
    with pytest.raises(ValueError):
        seal.seal(bytes(C), final=True)  # a final chunk must be short
    seal.seal(bytes(C), final=False)
    seal.seal(b"", final=True)
    assert seal.finished
    with pytest.raises(ValueError):
        seal.seal(b"", final=True)


def test_opener_checks_positions_and_buffer_sizes() -> None:
    seal = sealer()
    chunk0 = seal.seal(bytes(C), final=False)
    final = seal.seal(b"tail", final=True)
    opener = StreamOpener(seal.header, KEY)
    assert opener.open(0, chunk0, final=False) == bytes(C)
    assert opener.open(1, final, final=True) == b"tail"
    for index, chunk, is_final in [(1, chunk0, False), (0, chunk0, True), (0, final, True)]:
        with pytest.raises(InvalidStream):
            opener.open(index, chunk, final=is_final)
    with pytest.raises(InvalidStream):
        opener.open(2**64, chunk0, final=False)
    with pytest.raises(ValueError):
        opener.open_into(1, final, True, memoryview(bytearray(3)))


def test_failed_chunk_leaves_no_plaintext_in_the_output_buffer() -> None:
    seal = sealer()
    chunk = bytearray(seal.seal(b"secret plaintext", final=True))
    chunk[-1] ^= 1
    out = bytearray(b"\xaa" * 16)
    with pytest.raises(InvalidStream):
        StreamOpener(seal.header, KEY).open_into(0, chunk, True, memoryview(out))
    assert out == bytes(16)


def test_secrets_stay_out_of_reprs_and_pickles() -> None:
    keys = StreamKeys(KEY, bytes(32))
    assert KEY.hex() not in repr(keys) and "hidden" in repr(keys)
    with pytest.raises(TypeError):
        pickle.dumps(keys)
    seal = sealer()
    assert KEY.hex() not in repr(seal) and str(KEY) not in repr(seal)


def test_commitment_and_header_mac_are_each_checked() -> None:
    header = sealer().header
    keys = StreamKeys(KEY, header.salt)
    # A wrong commitment under a header MAC that is right for those bytes.
    body = header.raw[:-64] + bytes(32)
    forged = parse_header(body + keys.header_mac(body), C)
    with pytest.raises(InvalidStream):
        StreamOpener(forged, KEY)
    # The right commitment with a wrong MAC.
    forged = parse_header(header.raw[:-32] + bytes(32), C)
    with pytest.raises(InvalidStream):
        StreamOpener(forged, KEY)
    assert StreamOpener(parse_header(header.raw, C), KEY).header == header
