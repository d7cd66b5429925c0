"""Write tests/vectors/stream_v1.json: chunked stream format v1 vectors.

Run ``python tests/vectors/generate_stream.py`` from the repository root. Salts and keys
are fixed, so the output is deterministic; tests/crypto/test_stream_vectors.py checks the
file both ways and against an independent decoder written from docs/formats.md.
Chunk sizes below 64 KiB (here 64 bytes) are for vectors and tests only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from strongroom.crypto.stream import TEST_MIN_CHUNK_SIZE, StreamSealer, parse_header
from strongroom.crypto.stream_io import encrypt_buffer

OUT = Path(__file__).with_name("stream_v1.json")
DATA_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
KEY_ID = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _plaintext(length: int) -> bytes:
    return bytes((i * 31 + 7) % 256 for i in range(length))


def _salt(n: int) -> bytes:
    return hashlib.sha256(b"stream vector salt %d" % n).digest()


CASES = [
    ("empty stream: one empty final chunk", 64, 0, {}),
    ("one byte", 64, 1, {}),
    ("one byte short of a chunk", 64, 63, {"purpose": "vector"}),
    ("exactly one chunk: a full chunk then an empty final chunk", 64, 64, {}),
    ("four chunks", 64, 200, {"tenant": "111122223333", "object": "a/b.txt"}),
    ("non-ASCII context", 128, 300, {"naïve": "☃", "b": ""}),
    ("64 KiB chunks", 65536, 100, {"purpose": "vector"}),
]


def _hex(data: bytes | bytearray) -> str:
    return bytes(data).hex()


def _valid(
    number: int, name: str, chunk: int, length: int, context: dict[str, str]
) -> dict[str, Any]:
    wrapped = hashlib.sha256(b"wrapped %d" % number).digest() + b"\x01\x02"
    salt = _salt(number)
    sealer = StreamSealer(
        DATA_KEY,
        key_id=KEY_ID,
        wrapped_key=wrapped,
        context=context,
        chunk_size=chunk,
        salt=salt,
        min_chunk_size=TEST_MIN_CHUNK_SIZE,
    )
    plaintext = _plaintext(length)
    stream = encrypt_buffer(plaintext, sealer)
    prk = hmac.digest(salt, DATA_KEY, hashlib.sha256)
    return {
        "name": name,
        "chunk_size": chunk,
        "data_key": _hex(DATA_KEY),
        "salt": _hex(salt),
        "key_id": KEY_ID,
        "wrapped_key": _hex(wrapped),
        "context": context,
        "plaintext": _hex(plaintext),
        "prk": _hex(prk),
        "commitment": _hex(sealer.header.commitment),
        "header_size": sealer.header.size,
        "stream": _hex(stream),
    }


def _invalid(case: dict[str, Any]) -> list[dict[str, Any]]:
    stream = bytes.fromhex(case["stream"])
    size, step = parse_header(stream, TEST_MIN_CHUNK_SIZE).size, case["chunk_size"] + 16
    chunks = [stream[i : i + step] for i in range(size, len(stream), step)]
    flipped = bytearray(stream)
    flipped[size + step + 5] ^= 0x10
    header_flip = bytearray(stream)
    header_flip[9] ^= 0x01
    edits = [
        ("bit flip in chunk 1", bytes(flipped)),
        ("bit flip in the salt", bytes(header_flip)),
        ("truncated at a chunk boundary (final chunk dropped)", stream[: size + 3 * step]),
        ("truncated inside chunk 2", stream[: size + 2 * step + 10]),
        ("one byte appended", stream + b"\x00"),
        ("chunks 0 and 1 swapped", stream[:size] + chunks[1] + chunks[0] + b"".join(chunks[2:])),
        ("chunk 1 duplicated", stream[:size] + chunks[0] + chunks[1] + b"".join(chunks[1:])),
    ]
    return [{"name": name, "stream": _hex(data)} for name, data in edits]


def main() -> None:
    """Write the vectors file."""
    valid = [_valid(n, *case) for n, case in enumerate(CASES)]
    document = {
        "format": "strongroom chunked stream, version 1 (docs/formats.md)",
        "note": "chunk sizes below 65536 are allowed for vectors and tests only",
        "valid": valid,
        "invalid": {"base": valid[4]["name"], "cases": _invalid(valid[4])},
    }
    OUT.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
