"""Vectors for the chunked stream format v1, checked both ways and against a second codec.

The reference codec below is written from docs/formats.md alone, with the standard
library's HMAC and ``cryptography``'s AES-GCM, and shares no code with strongroom.crypto.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.stream import TEST_MIN_CHUNK_SIZE, InvalidStream, StreamSealer
from strongroom.crypto.stream_io import decrypt_buffer, decrypt_file, encrypt_buffer

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "stream_v1.json").read_text(encoding="utf-8")
)
VALID = VECTORS["valid"]
IDS = [v["name"] for v in VALID]


# -- reference codec, from the spec ---------------------------------------------------------


def _expand(prk: bytes, info: bytes) -> bytes:
    return hmac.digest(prk, info + b"\x01", hashlib.sha256)  # HKDF-Expand, L = 32


def _context(context: dict[str, str]) -> bytes:
    pairs = sorted((k.encode(), v.encode()) for k, v in context.items())
    out = struct.pack(">I", len(pairs))
    for key, value in pairs:
        out += struct.pack(">I", len(key)) + key + struct.pack(">I", len(value)) + value
    return out


def ref_encrypt(v: dict[str, Any], plaintext: bytes) -> bytes:
    key, salt, size = bytes.fromhex(v["data_key"]), bytes.fromhex(v["salt"]), v["chunk_size"]
    prk = hmac.digest(salt, key, hashlib.sha256)

    def lp(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    body = b"SRCS" + bytes((1, 1, 0, size.bit_length() - 1)) + salt
    body += lp(_context(v["context"])) + lp(v["key_id"].encode())
    body += lp(bytes.fromhex(v["wrapped_key"]))
    body += _expand(prk, b"strongroom/stream/v1/commit")
    header = body + hmac.digest(_expand(prk, b"strongroom/stream/v1/header"), body, hashlib.sha256)
    digest = hashlib.sha256(header).digest()
    out = header
    pieces = [
        plaintext[i : i + size] for i in range(0, len(plaintext) - len(plaintext) % size, size)
    ]
    pieces.append(plaintext[len(pieces) * size :])
    for index, piece in enumerate(pieces):
        final = index == len(pieces) - 1
        flag = b"\x01" if final else b"\x00"
        chunk_key = _expand(prk, b"strongroom/stream/v1/chunk" + struct.pack(">Q", index))
        nonce = bytes(3) + struct.pack(">Q", index) + flag
        aad = digest + struct.pack(">Q", index) + flag + struct.pack(">I", len(piece))
        out += AESGCM(chunk_key).encrypt(nonce, piece, aad)
    return out


def ref_decrypt(stream: bytes, data_key: bytes) -> bytes:
    """Decrypt per the spec; raises ValueError (or InvalidTag) on anything wrong."""
    if stream[:8] != b"SRCS\x01\x01\x00" + stream[7:8] or not 6 <= stream[7] <= 24:
        raise ValueError("prefix")
    size, salt, pos = 1 << stream[7], stream[8:40], 40
    fields = []
    for _ in range(3):
        (length,) = struct.unpack_from(">H", stream, pos)
        fields.append(stream[pos + 2 : pos + 2 + length])
        pos += 2 + length
    commitment, mac = stream[pos : pos + 32], stream[pos + 32 : pos + 64]
    header = stream[: pos + 64]
    prk = hmac.digest(salt, data_key, hashlib.sha256)
    if not hmac.compare_digest(commitment, _expand(prk, b"strongroom/stream/v1/commit")):
        raise ValueError("commitment")
    header_key = _expand(prk, b"strongroom/stream/v1/header")
    if not hmac.compare_digest(mac, hmac.digest(header_key, header[:-32], hashlib.sha256)):
        raise ValueError("mac")
    digest = hashlib.sha256(header).digest()
    body, out, index = stream[pos + 64 :], b"", 0
    while True:
        chunk, body = body[: size + 16], body[size + 16 :]
        final = len(chunk) < size + 16
        if final and body:
            raise ValueError("trailing")
        flag = b"\x01" if final else b"\x00"
        chunk_key = _expand(prk, b"strongroom/stream/v1/chunk" + struct.pack(">Q", index))
        nonce = bytes(3) + struct.pack(">Q", index) + flag
        aad = digest + struct.pack(">Q", index) + flag + struct.pack(">I", len(chunk) - 16)
        if len(chunk) < 16:
            raise ValueError("short")
        out += AESGCM(chunk_key).decrypt(nonce, chunk, aad)
        if final:
            return out
        index += 1


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("v", VALID, ids=IDS)
def test_vector_encrypts_to_the_stored_bytes(v: dict[str, Any]) -> None:
    sealer = StreamSealer(
        bytes.fromhex(v["data_key"]),
        key_id=v["key_id"],
        wrapped_key=bytes.fromhex(v["wrapped_key"]),
        context=v["context"],
        chunk_size=v["chunk_size"],
        salt=bytes.fromhex(v["salt"]),
        min_chunk_size=TEST_MIN_CHUNK_SIZE,
    )
    plaintext = bytes.fromhex(v["plaintext"])
    assert bytes(encrypt_buffer(plaintext, sealer)).hex() == v["stream"]
    assert sealer.header.commitment.hex() == v["commitment"]
    assert sealer.header.size == v["header_size"]


@pytest.mark.parametrize("v", VALID, ids=IDS)
def test_vector_decrypts_to_the_stored_plaintext(v: dict[str, Any]) -> None:
    stream, key = bytes.fromhex(v["stream"]), bytes.fromhex(v["data_key"])
    header, plaintext = decrypt_buffer(stream, lambda h: key, min_chunk_size=TEST_MIN_CHUNK_SIZE)
    assert bytes(plaintext).hex() == v["plaintext"]
    assert (dict(header.context), header.key_id) == (v["context"], v["key_id"])
    assert header.wrapped_key.hex() == v["wrapped_key"]
    sink = io.BytesIO()
    decrypt_file(io.BytesIO(stream), sink, lambda h: key, min_chunk_size=TEST_MIN_CHUNK_SIZE)
    assert sink.getvalue().hex() == v["plaintext"]


@pytest.mark.parametrize("v", VALID, ids=IDS)
def test_reference_codec_agrees_with_the_vector(v: dict[str, Any]) -> None:
    plaintext, stream = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["stream"])
    assert ref_encrypt(v, plaintext) == stream
    assert ref_decrypt(stream, bytes.fromhex(v["data_key"])) == plaintext
    assert (
        hmac.digest(bytes.fromhex(v["salt"]), bytes.fromhex(v["data_key"]), "sha256").hex()
        == (v["prk"])
    )


@pytest.mark.parametrize("case", VECTORS["invalid"]["cases"], ids=lambda c: c["name"])
def test_invalid_vectors_fail_in_both_codecs(case: dict[str, Any]) -> None:
    stream, key = bytes.fromhex(case["stream"]), bytes.fromhex(VALID[0]["data_key"])
    with pytest.raises(InvalidStream):
        decrypt_buffer(stream, lambda h: key, min_chunk_size=TEST_MIN_CHUNK_SIZE)
    with pytest.raises(InvalidStream):
        decrypt_file(
            io.BytesIO(stream), io.BytesIO(), lambda h: key, min_chunk_size=TEST_MIN_CHUNK_SIZE
        )
    with pytest.raises(Exception):  # noqa: B017 - the reference codec fails in its own ways
        ref_decrypt(stream, key)
