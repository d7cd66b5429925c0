"""Canonical, unambiguous encoding of an AWS-style encryption context.

Some KMS emulators concatenate keys and values, so ``{"ab": "c"}`` and ``{"a": "bc"}``
authenticate the same bytes and decrypt each other's ciphertext. Here every key and value
is length-prefixed and the pairs are sorted by the UTF-8 bytes of their keys, so two
different contexts never encode the same way::

    u32 pair_count || (u32 len(key) || key || u32 len(value) || value) * pair_count
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from strongroom.crypto.hazmat import length_prefixed


def encode_context(context: Mapping[str, str] | None) -> bytes:
    """Return the canonical bytes of ``context`` (``None`` and ``{}`` encode alike)."""
    if not context:
        return struct.pack(">I", 0)
    pairs = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    out = bytearray(struct.pack(">I", len(pairs)))
    for key, value in pairs:
        out += length_prefixed(key, value)
    return bytes(out)


def decode_context(data: bytes) -> dict[str, str]:
    """Parse bytes made by :func:`encode_context`; raises ``ValueError`` if malformed."""
    if len(data) < 4:
        raise ValueError("truncated encryption context")
    (count,) = struct.unpack_from(">I", data, 0)
    offset = 4
    result: dict[str, str] = {}
    for _ in range(count):
        fields: list[str] = []
        for _ in range(2):
            if offset + 4 > len(data):
                raise ValueError("truncated encryption context")
            (length,) = struct.unpack_from(">I", data, offset)
            offset += 4
            if offset + length > len(data):
                raise ValueError("truncated encryption context")
            fields.append(data[offset : offset + length].decode("utf-8"))
            offset += length
        result[fields[0]] = fields[1]
    if offset != len(data):
        raise ValueError("trailing bytes after encryption context")
    if encode_context(result) != data:
        raise ValueError("encryption context is not in canonical form")
    return result
