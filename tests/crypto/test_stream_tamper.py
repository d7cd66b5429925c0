"""Tamper suite for the chunked stream format v1, on small (test-only) chunks.

Every alteration must fail with InvalidStream, and the streaming decrypt must have written
nothing but the plaintext of the whole chunks before the first altered one.
"""

from __future__ import annotations

import io
import itertools
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.context import encode_context
from strongroom.crypto.stream import (
    MAC_BYTES,
    TEST_MIN_CHUNK_SIZE,
    InvalidStream,
    StreamHeader,
    StreamSealer,
    parse_header,
)
from strongroom.crypto.stream_io import decrypt_buffer, decrypt_file, encrypt_buffer

C = TEST_MIN_CHUNK_SIZE
KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
CONTEXT = {"tenant": "alice", "object": "report.pdf"}
PLAINTEXT = bytes((i * 7 + 3) % 256 for i in range(3 * C + C // 2))  # 4 chunks
KEYRING = {b"wrapped-A": KEY_A, b"wrapped-B": KEY_B}


def keyring_unwrap(header: StreamHeader) -> bytes:
    """A stand-in key service: returns the key a wrapped key stands for."""
    try:
        return KEYRING[header.wrapped_key]
    except KeyError:
        raise InvalidStream from None


def make(
    plaintext: bytes = PLAINTEXT,
    *,
    key: bytes = KEY_A,
    wrapped: bytes = b"wrapped-A",
    context: dict[str, str] | None = None,
) -> bytes:
    sealer = StreamSealer(
        key,
        key_id="key-1",
        wrapped_key=wrapped,
        context=CONTEXT if context is None else context,
        chunk_size=C,
        min_chunk_size=C,
    )
    return bytes(encrypt_buffer(plaintext, sealer))


class Recorder:
    """A sink that copies every write, so the test sees exactly what was emitted."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: memoryview) -> int:
        self.parts.append(bytes(data))
        return len(data)

    @property
    def value(self) -> bytes:
        return b"".join(self.parts)


def stream_decrypt(
    data: bytes, unwrap: Callable[[StreamHeader], bytes] = keyring_unwrap
) -> tuple[bool, bytes]:
    sink = Recorder()
    try:
        decrypt_file(io.BytesIO(data), sink, unwrap, min_chunk_size=C)
    except InvalidStream:
        return False, sink.value
    return True, sink.value


def assert_rejected(data: bytes, plaintext: bytes, good_chunks: int) -> None:
    """``data`` fails both ways; streaming emitted only the first ``good_chunks`` chunks."""
    ok, emitted = stream_decrypt(data)
    assert not ok
    assert emitted == plaintext[: good_chunks * C]
    with pytest.raises(InvalidStream):
        decrypt_buffer(data, keyring_unwrap, min_chunk_size=C)


def split(data: bytes) -> tuple[bytes, list[bytes]]:
    header = parse_header(data, C)
    body = data[header.size :]
    return data[: header.size], [body[i : i + C + 16] for i in range(0, len(body), C + 16)]


STREAM = make()
HEADER_SIZE = parse_header(STREAM, C).size


def test_fixture_stream_decrypts_and_has_four_chunks() -> None:
    assert stream_decrypt(STREAM) == (True, PLAINTEXT)
    assert len(split(STREAM)[1]) == 4


def test_every_single_bit_flip_fails_and_emits_only_earlier_chunks() -> None:
    for position in range(len(STREAM)):
        good = 0 if position < HEADER_SIZE else (position - HEADER_SIZE) // (C + 16)
        for bit in range(8):
            tampered = bytearray(STREAM)
            tampered[position] ^= 1 << bit
            assert_rejected(bytes(tampered), PLAINTEXT, good)


def test_every_truncation_fails_and_emits_only_whole_earlier_chunks() -> None:
    for cut in range(len(STREAM)):
        good = 0 if cut < HEADER_SIZE else (cut - HEADER_SIZE) // (C + 16)
        assert_rejected(STREAM[:cut], PLAINTEXT, good)


@pytest.mark.parametrize(
    "extra", [b"\x00", b"\x00" * 15, b"\x00" * 16, b"x" * (C + 16), b"x" * 999]
)
def test_appended_bytes_fail(extra: bytes) -> None:
    assert_rejected(STREAM + extra, PLAINTEXT, 3)


@pytest.mark.parametrize("length", [0, 1, C - 1, C, C + 1, 2 * C])
def test_appended_chunk_boundary_cases(length: int) -> None:
    plaintext = PLAINTEXT[:length]
    stream = make(plaintext)
    final = length // C
    _header, chunks = split(stream)
    # An extra copy of the final chunk, and a full chunk, after the final chunk.
    assert_rejected(stream + chunks[-1], plaintext, final)
    assert_rejected(stream + bytes(C + 16), plaintext, final)


def test_every_reordering_of_chunks_fails_unless_identity() -> None:
    header, chunks = split(STREAM)
    for order in itertools.permutations(range(len(chunks))):
        if list(order) == sorted(order):
            continue
        good = next(i for i, j in enumerate(order) if i != j)
        assert_rejected(header + b"".join(chunks[i] for i in order), PLAINTEXT, good)


def test_every_duplicated_or_dropped_chunk_fails() -> None:
    header, chunks = split(STREAM)
    for i in range(len(chunks)):
        dropped = chunks[:i] + chunks[i + 1 :]
        assert_rejected(header + b"".join(dropped), PLAINTEXT, i)
        for at in range(len(chunks) + 1):
            doubled = [*chunks[:at], chunks[i], *chunks[at:]]
            good = next(
                k for k in range(len(doubled)) if k >= len(chunks) or doubled[k] != chunks[k]
            )
            assert_rejected(header + b"".join(doubled), PLAINTEXT, min(good, 3))


def test_chunks_spliced_between_objects_of_the_same_key_fail() -> None:
    other = make()  # same key, same wrapped key, same context: only the salt differs
    assert other != STREAM
    header_a, chunks_a = split(STREAM)
    header_b, chunks_b = split(other)
    for i in range(len(chunks_a)):
        spliced = [*chunks_a[:i], chunks_b[i], *chunks_a[i + 1 :]]
        assert_rejected(header_a + b"".join(spliced), PLAINTEXT, i)
    # A header from another object (valid on its own) in front of this object's chunks.
    assert_rejected(header_b + b"".join(chunks_a), PLAINTEXT, 0)


def _reencode(header: StreamHeader, **changes: object) -> bytes:
    """Rebuild header bytes from fields, keeping the old commitment and MAC."""
    fields = {
        "context": dict(header.context),
        "key_id": header.key_id,
        "wrapped": header.wrapped_key,
        "salt": header.salt,
        **changes,
    }

    def lp(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    return (
        header.raw[:8]
        + fields["salt"]  # type: ignore[operator]
        + lp(encode_context(fields["context"]))  # type: ignore[arg-type]
        + lp(str(fields["key_id"]).encode())
        + lp(fields["wrapped"])  # type: ignore[arg-type]
        + header.commitment
        + header.mac
    )


def test_reencoding_helper_is_faithful() -> None:
    header = parse_header(STREAM, C)
    assert _reencode(header) == header.raw


@pytest.mark.parametrize(
    "change",
    [
        {"context": {"tenant": "bob", "object": "report.pdf"}},
        {"context": {}},
        {"context": {"tenant": "alice", "object": "report.pdf", "x": "y"}},
        {"key_id": "key-2"},
        {"wrapped": b"wrapped-B"},
    ],
)
def test_header_fields_swapped_under_the_old_mac_fail(change: dict[str, object]) -> None:
    header, chunks = split(STREAM)
    forged = _reencode(parse_header(STREAM, C), **change)
    assert forged != header
    assert_rejected(forged + b"".join(chunks), PLAINTEXT, 0)


def test_another_keys_wrapped_key_fails_the_commitment() -> None:
    # B's stream is valid under KEY_B; give it A's wrapped key (and so A's data key).
    stream_b = make(key=KEY_B, wrapped=b"wrapped-B")
    header, chunks = split(stream_b)
    forged = _reencode(parse_header(stream_b, C), wrapped=b"wrapped-A")
    assert_rejected(forged + b"".join(chunks), PLAINTEXT, 0)
    # And the right data key, but a header where only the commitment is another stream's.
    other = parse_header(make(), C)
    swapped = header[: -2 * MAC_BYTES] + other.commitment + header[-MAC_BYTES:]
    assert_rejected(swapped + b"".join(chunks), PLAINTEXT, 0)


def test_wrong_data_key_fails_before_any_chunk() -> None:
    ok, emitted = stream_decrypt(STREAM, lambda header: KEY_B)
    assert (ok, emitted) == (False, b"")
    ok, emitted = stream_decrypt(STREAM, lambda header: KEY_A[:16])
    assert (ok, emitted) == (False, b"")


def test_unwrap_errors_pass_through_untouched() -> None:
    def refuse(header: StreamHeader) -> bytes:
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        decrypt_file(io.BytesIO(STREAM), Recorder(), refuse, min_chunk_size=C)


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(0, 5 * C),
    data=st.data(),
)
def test_any_random_edit_fails_and_emits_only_verified_chunks(
    length: int, data: st.DataObject
) -> None:
    plaintext = bytes(range(256)) * (length // 256 + 1)
    plaintext = plaintext[:length]
    stream = make(plaintext)
    kind = data.draw(st.sampled_from(["xor", "insert", "delete", "replace"]))
    position = data.draw(st.integers(0, len(stream) - 1))
    if kind == "xor":
        mask = data.draw(st.binary(min_size=1, max_size=8).filter(any))
        edited = bytearray(stream)
        for i, m in enumerate(mask[: len(stream) - position]):
            edited[position + i] ^= m
        tampered = bytes(edited)
    elif kind == "insert":
        tampered = (
            stream[:position] + data.draw(st.binary(min_size=1, max_size=40)) + stream[position:]
        )
    elif kind == "delete":
        count = data.draw(st.integers(1, 40))
        tampered = stream[:position] + stream[position + count :]
    else:
        blob = data.draw(st.binary(min_size=1, max_size=40))
        tampered = stream[:position] + blob + stream[position + len(blob) :]
    if tampered == stream:
        return
    ok, emitted = stream_decrypt(tampered)
    assert not ok
    first_changed = next(
        (i for i, (a, b) in enumerate(zip(stream, tampered, strict=False)) if a != b),
        min(len(stream), len(tampered)),
    )
    limit = (
        0
        if first_changed < parse_header(stream, C).size
        else ((first_changed - parse_header(stream, C).size) // (C + 16))
    )
    assert emitted == plaintext[: limit * C]
    with pytest.raises(InvalidStream):
        decrypt_buffer(tampered, keyring_unwrap, min_chunk_size=C)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_never_anything_but_invalid(data: bytes) -> None:
    ok, emitted = stream_decrypt(data)
    assert (ok, emitted) == (False, b"")
    with pytest.raises(InvalidStream):
        decrypt_buffer(data, keyring_unwrap, min_chunk_size=C)
