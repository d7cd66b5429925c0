"""encrypt_stream / decrypt_stream over file objects, with raw keys and the key service."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.crypto.context import encode_context
from strongroom.crypto.stream import StreamHeader, parse_header
from strongroom.data import (
    DataKey,
    DataKeyProvider,
    InProcessDataKeys,
    decrypt_stream,
    encrypt_stream,
)
from strongroom.errors import (
    DisabledError,
    InvalidCiphertextError,
    StrongroomError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService

C = 1 << 16
KEY = bytes(range(32))
PLAINTEXT = bytes(range(256)) * (2 * C // 256) + b"tail"  # two full chunks and a short one
CONTEXT = {"bucket": "reports", "object": "2024/q1.pdf"}


class Recorder:
    """A sink that records (copies) every write."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: memoryview) -> int:
        self.parts.append(bytes(data))
        return len(data)

    @property
    def value(self) -> bytes:
        return b"".join(self.parts)


def encrypt(
    provider: DataKeyProvider,
    key_id: str,
    context: dict[str, str] | None = CONTEXT,
    plaintext: bytes = PLAINTEXT,
) -> bytes:
    out = io.BytesIO()
    encrypt_stream(
        io.BytesIO(plaintext), out, provider, key_id=key_id, context=context, chunk_size=C
    )
    return out.getvalue()


def decrypt(stream: bytes, key: object, **kw: object) -> bytes:
    sink = io.BytesIO()
    decrypt_stream(io.BytesIO(stream), sink, key, **kw)  # type: ignore[arg-type]
    return sink.getvalue()


def reencode(
    stream: bytes, *, context: dict[str, str] | None = None, wrapped: bytes | None = None
) -> bytes:
    """Swap header fields, keeping the old commitment and MAC (an attacker's edit)."""
    header = parse_header(stream)

    def lp(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    raw = (
        header.raw[:40]
        + lp(encode_context(dict(header.context) if context is None else context))
        + lp(header.key_id.encode())
        + lp(header.wrapped_key if wrapped is None else wrapped)
        + header.commitment
        + header.mac
    )
    return raw + stream[header.size :]


def test_round_trip_with_a_raw_key() -> None:
    out = io.BytesIO()
    header = encrypt_stream(
        io.BytesIO(PLAINTEXT), out, KEY, b"wrapped", "local-key", CONTEXT, chunk_size=C
    )
    assert (header.key_id, header.wrapped_key, dict(header.context)) == (
        "local-key",
        b"wrapped",
        CONTEXT,
    )
    seen: list[StreamHeader] = []

    def unwrap(h: StreamHeader) -> bytes:
        seen.append(h)
        return KEY

    assert decrypt(out.getvalue(), unwrap) == PLAINTEXT
    assert seen == [header]


def test_round_trip_through_the_key_service(alice_keys: InProcessDataKeys, alice_key: str) -> None:
    assert isinstance(alice_keys, DataKeyProvider)
    stream = encrypt(alice_keys, alice_key)
    header = parse_header(stream)
    assert header.key_id == alice_key
    assert dict(header.context) == CONTEXT
    assert decrypt(stream, alice_keys) == PLAINTEXT
    assert decrypt(stream, alice_keys, context=CONTEXT) == PLAINTEXT


def test_alias_resolves_to_the_key_arn_in_the_header(
    service: KeyService, alice: Caller, alice_keys: InProcessDataKeys, alice_key: str
) -> None:
    service.call(alice, "CreateAlias", {"AliasName": "alias/reports", "TargetKeyId": alice_key})
    stream = encrypt(alice_keys, "alias/reports", plaintext=b"x")
    assert parse_header(stream).key_id == alice_key
    assert decrypt(stream, alice_keys) == b"x"


def test_each_stream_gets_its_own_data_key(alice_keys: InProcessDataKeys, alice_key: str) -> None:
    a, b = (
        parse_header(encrypt(alice_keys, alice_key)),
        parse_header(encrypt(alice_keys, alice_key)),
    )
    assert a.wrapped_key != b.wrapped_key and a.salt != b.salt


def test_data_key_hides_its_plaintext() -> None:
    key = DataKey(KEY, b"wrapped", "arn")
    assert tuple(key) == (KEY, b"wrapped", "arn")
    assert KEY.hex() not in repr(key) and str(KEY) not in repr(key)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_expected_context_must_match_exactly(alice_keys: InProcessDataKeys, alice_key: str) -> None:
    stream = encrypt(alice_keys, alice_key)
    for wrong in ({}, {"bucket": "reports"}, {**CONTEXT, "extra": "1"}, {**CONTEXT, "bucket": "x"}):
        sink = Recorder()
        with pytest.raises(InvalidCiphertextError):
            decrypt_stream(io.BytesIO(stream), sink, alice_keys, context=wrong)
        assert sink.value == b""


def test_header_context_swapped_fails(alice_keys: InProcessDataKeys, alice_key: str) -> None:
    stream = encrypt(alice_keys, alice_key)
    forged = reencode(stream, context={"bucket": "reports", "object": "other.pdf"})
    sink = Recorder()
    with pytest.raises(InvalidCiphertextError):  # the key service refuses the other context
        decrypt_stream(io.BytesIO(forged), sink, alice_keys)
    assert sink.value == b""


def test_relabelled_stream_with_the_right_data_key_is_refused_by_the_key_service(
    alice_keys: InProcessDataKeys, alice_key: str
) -> None:
    # Someone holding one data key writes a valid stream under another context: the
    # wrapped key stays bound to the context it was generated for.
    generated = alice_keys.generate_data_key(alice_key, CONTEXT)
    out = io.BytesIO()
    encrypt_stream(
        io.BytesIO(b"forged"),
        out,
        generated.plaintext,
        generated.wrapped,
        generated.key_arn,
        {"bucket": "public"},
        chunk_size=C,
    )
    with pytest.raises(InvalidCiphertextError):
        decrypt(out.getvalue(), alice_keys)


def test_another_tenant_cannot_decrypt(
    alice_keys: InProcessDataKeys, bob_keys: InProcessDataKeys, alice_key: str
) -> None:
    stream = encrypt(alice_keys, alice_key)
    sink = Recorder()
    with pytest.raises(StrongroomError):
        decrypt_stream(io.BytesIO(stream), sink, bob_keys)
    assert sink.value == b""


def test_another_tenants_or_keys_wrapped_key_in_the_header_fails(
    service: KeyService,
    alice: Caller,
    alice_keys: InProcessDataKeys,
    bob_keys: InProcessDataKeys,
    alice_key: str,
    bob: Caller,
) -> None:
    bob_key = str(service.call(bob, "CreateKey", {})["KeyMetadata"]["Arn"])
    other_alice_key = str(service.call(alice, "CreateKey", {})["KeyMetadata"]["Arn"])
    stream = encrypt(alice_keys, alice_key)
    for provider, key_id in (
        (bob_keys, bob_key),
        (alice_keys, other_alice_key),
        (alice_keys, alice_key),
    ):
        wrapped = provider.generate_data_key(key_id, CONTEXT).wrapped
        forged = reencode(stream, wrapped=wrapped)
        for reader in (alice_keys, bob_keys):
            sink = Recorder()
            with pytest.raises(StrongroomError):
                decrypt_stream(io.BytesIO(forged), sink, reader)
            assert sink.value == b""


def test_disabled_key_stops_decryption(
    service: KeyService, alice: Caller, alice_keys: InProcessDataKeys, alice_key: str
) -> None:
    stream = encrypt(alice_keys, alice_key)
    service.call(alice, "DisableKey", {"KeyId": alice_key})
    with pytest.raises(DisabledError):
        decrypt(stream, alice_keys)
    service.call(alice, "EnableKey", {"KeyId": alice_key})
    assert decrypt(stream, alice_keys) == PLAINTEXT


@pytest.mark.parametrize("size", [0, 1000, C // 2 + 1, 3 << 16, 1 << 25])
def test_public_api_refuses_chunk_sizes_out_of_range(size: int) -> None:
    with pytest.raises(ValidationError):
        encrypt_stream(io.BytesIO(b""), io.BytesIO(), KEY, b"w", "k", chunk_size=size)


def test_missing_arguments_are_validation_errors(alice_keys: InProcessDataKeys) -> None:
    with pytest.raises(ValidationError):
        encrypt_stream(io.BytesIO(b""), io.BytesIO(), KEY, b"w")  # type: ignore[call-overload]
    with pytest.raises(ValidationError):
        encrypt_stream(io.BytesIO(b""), io.BytesIO(), KEY, None, "k")  # type: ignore[call-overload]
    with pytest.raises(ValidationError):
        encrypt_stream(io.BytesIO(b""), io.BytesIO(), KEY[:16], b"w", "k")


STREAM = io.BytesIO()
encrypt_stream(io.BytesIO(PLAINTEXT), STREAM, KEY, b"wrapped", "local-key", CONTEXT, chunk_size=C)
RAW_STREAM = STREAM.getvalue()
HEADER_SIZE = parse_header(RAW_STREAM).size


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(0, len(RAW_STREAM) - 1), mask=st.integers(1, 255))
def test_any_byte_flip_fails_and_emits_only_verified_chunks(position: int, mask: int) -> None:
    tampered = bytearray(RAW_STREAM)
    tampered[position] ^= mask
    sink = Recorder()
    with pytest.raises(InvalidCiphertextError):
        decrypt_stream(io.BytesIO(bytes(tampered)), sink, lambda h: KEY)
    good = 0 if position < HEADER_SIZE else (position - HEADER_SIZE) // (C + 16)
    assert sink.value == PLAINTEXT[: good * C]


@pytest.mark.parametrize(
    "cut",
    [0, 10, HEADER_SIZE, HEADER_SIZE + C + 16, HEADER_SIZE + 2 * (C + 16), len(RAW_STREAM) - 1],
)
def test_truncation_fails(cut: int) -> None:
    sink = Recorder()
    with pytest.raises(InvalidCiphertextError):
        decrypt_stream(io.BytesIO(RAW_STREAM[:cut]), sink, lambda h: KEY)
    assert sink.value == PLAINTEXT[: max(0, cut - HEADER_SIZE) // (C + 16) * C]


def test_appended_bytes_fail() -> None:
    for extra in (b"\x00", bytes(C + 16)):
        sink = Recorder()
        with pytest.raises(InvalidCiphertextError):
            decrypt_stream(io.BytesIO(RAW_STREAM + extra), sink, lambda h: KEY)
        assert sink.value == PLAINTEXT[: 2 * C]
