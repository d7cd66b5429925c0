"""The header of a chunked stream (format v1): its limits, encoding, parsing and errors.

::

    header = "SRCS" || u8 version=1 || u8 suite=1 || u8 flags=0 || u8 log2(chunk_size)
             || salt(32) || u16 len || canonical context || u16 len || key id (UTF-8)
             || u16 len || wrapped data key || commitment(32) || header MAC(32)

Parsing checks the shape only; :class:`~strongroom.crypto.stream.StreamOpener` authenticates
a parsed header (commitment, then MAC) before any chunk is opened. The whole format is in
:mod:`strongroom.crypto.stream` and docs/formats.md.
"""

from __future__ import annotations

import struct
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from strongroom.crypto.context import decode_context, encode_context
from strongroom.crypto.stream_keys import StreamKeys

MAGIC = b"SRCS"
STREAM_VERSION = 1
SUITE_AES256GCM_HKDF_SHA256_COMMIT = 1
"""AES-256-GCM under per-chunk HKDF-SHA256 keys, key commitment, HMAC-SHA256 header."""
DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 1 << 16
MAX_CHUNK_SIZE = 1 << 24
TEST_MIN_CHUNK_SIZE = 1 << 6
"""Smallest chunk size the core accepts when asked to (``min_chunk_size``): tests only."""
SALT_BYTES = 32
COMMITMENT_BYTES = 32
MAC_BYTES = 32
MAX_CONTEXT_BYTES = 0xFFFF
MAX_KEY_ID_BYTES = 2048
MAX_WRAPPED_KEY_BYTES = 8192
FIXED_PREFIX_BYTES = len(MAGIC) + 4 + SALT_BYTES
"""Bytes before the first length field: magic, version, suite, flags, size, salt."""
_U16 = struct.Struct(">H")


class InvalidStream(Exception):
    """The bytes are not a valid stream, or do not authenticate. Carries no detail."""


class NotAStream(InvalidStream):
    """The bytes do not even begin as a stream of this format and version.

    Decided before anything is authenticated, from public facts only (no bytes, the magic,
    the version and suite bytes), so telling it apart from a stream that fails to
    authenticate reveals nothing about keys or plaintext. ``leading`` holds up to the
    first 8 bytes read, so a caller can say what the input looks like instead.
    """

    def __init__(self, leading: bytes) -> None:
        super().__init__()
        self.leading = bytes(leading[:8])

    @property
    def empty(self) -> bool:
        """The input had no bytes at all."""
        return not self.leading

    @property
    def unknown_version(self) -> int | None:
        """The version byte of a stream with our magic but a version we do not read."""
        if self.leading[:4] == MAGIC and len(self.leading) > 4:
            return self.leading[4]
        return None


@dataclass(frozen=True, slots=True)
class StreamHeader:
    """A parsed stream header. Only :attr:`raw` is authoritative; the rest is read from it.

    Until a :class:`StreamOpener` has been built from it, nothing here is authenticated.
    """

    chunk_size: int
    salt: bytes
    context: Mapping[str, str] = field(hash=False)
    key_id: str
    wrapped_key: bytes
    commitment: bytes
    mac: bytes
    raw: bytes = field(repr=False)
    suite: int = SUITE_AES256GCM_HKDF_SHA256_COMMIT

    @property
    def size(self) -> int:
        """Length of the header in bytes: the offset of chunk 0."""
        return len(self.raw)


def check_chunk_size(chunk_size: int, min_chunk_size: int = MIN_CHUNK_SIZE) -> int:
    """Return log2(chunk_size); ``ValueError`` unless a power of two in range."""
    if min_chunk_size < TEST_MIN_CHUNK_SIZE:
        raise ValueError("minimum chunk size below the format's floor")
    if not min_chunk_size <= chunk_size <= MAX_CHUNK_SIZE or chunk_size & (chunk_size - 1):
        raise ValueError("chunk size must be a power of two from 64 KiB to 16 MiB")
    return chunk_size.bit_length() - 1


def _field(data: bytes, limit: int, minimum: int) -> bytes:
    if not minimum <= len(data) <= limit:
        raise ValueError("header field length out of range")
    return _U16.pack(len(data)) + data


def build_header(
    keys: StreamKeys,
    *,
    chunk_size: int,
    salt: bytes,
    context: Mapping[str, str] | None,
    key_id: str,
    wrapped_key: bytes,
    min_chunk_size: int = MIN_CHUNK_SIZE,
) -> StreamHeader:
    """Encode and MAC a header; ``ValueError`` for parameters out of range."""
    exponent = check_chunk_size(chunk_size, min_chunk_size)
    if len(salt) != SALT_BYTES:
        raise ValueError("salt must be 32 bytes")
    body = bytearray(MAGIC)
    body += bytes((STREAM_VERSION, SUITE_AES256GCM_HKDF_SHA256_COMMIT, 0, exponent))
    body += salt
    body += _field(encode_context(context), MAX_CONTEXT_BYTES, 4)
    body += _field(key_id.encode("utf-8"), MAX_KEY_ID_BYTES, 1)
    body += _field(wrapped_key, MAX_WRAPPED_KEY_BYTES, 1)
    commitment = keys.commitment()
    body += commitment
    mac = keys.header_mac(bytes(body))
    return StreamHeader(
        chunk_size,
        bytes(salt),
        types.MappingProxyType(dict(context or {})),
        key_id,
        bytes(wrapped_key),
        commitment,
        mac,
        bytes(body) + mac,
    )


def read_header(read: Callable[[int], bytes], min_chunk_size: int = MIN_CHUNK_SIZE) -> StreamHeader:
    """Parse a header through ``read(n)``, which returns ``n`` bytes or fewer at the end.

    Reads exactly the header's bytes and no more. Raises :class:`InvalidStream` for
    anything malformed; the result is not yet authenticated.
    """
    if min_chunk_size < TEST_MIN_CHUNK_SIZE:
        raise ValueError("minimum chunk size below the format's floor")

    def take(n: int) -> bytes:
        data = read(n)
        if len(data) != n:
            raise InvalidStream
        return data

    def lp(limit: int, minimum: int) -> bytes:
        (length,) = _U16.unpack(take(2))
        if not minimum <= length <= limit:
            raise InvalidStream
        return take(length)

    magic = read(len(MAGIC))
    if magic != MAGIC:
        raise NotAStream(magic)
    prefix = magic + take(FIXED_PREFIX_BYTES - len(MAGIC))
    if prefix[4:7] != bytes((STREAM_VERSION, SUITE_AES256GCM_HKDF_SHA256_COMMIT, 0)):
        raise NotAStream(prefix)
    exponent = prefix[7]
    if not min_chunk_size.bit_length() - 1 <= exponent <= MAX_CHUNK_SIZE.bit_length() - 1:
        raise InvalidStream
    context_bytes = lp(MAX_CONTEXT_BYTES, 4)
    key_id_bytes = lp(MAX_KEY_ID_BYTES, 1)
    wrapped = lp(MAX_WRAPPED_KEY_BYTES, 1)
    commitment = take(COMMITMENT_BYTES)
    mac = take(MAC_BYTES)
    try:
        context = decode_context(context_bytes)
        key_id = key_id_bytes.decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidStream from exc
    raw = b"".join(
        (
            prefix,
            _U16.pack(len(context_bytes)),
            context_bytes,
            _U16.pack(len(key_id_bytes)),
            key_id_bytes,
            _U16.pack(len(wrapped)),
            wrapped,
            commitment,
            mac,
        )
    )
    return StreamHeader(
        1 << exponent,
        prefix[8:],
        types.MappingProxyType(context),
        key_id,
        wrapped,
        commitment,
        mac,
        raw,
    )


def parse_header(
    data: bytes | bytearray | memoryview, min_chunk_size: int = MIN_CHUNK_SIZE
) -> StreamHeader:
    """Parse the header at the start of ``data`` (which may go on with chunks)."""
    view = memoryview(data)
    offset = 0

    def read(n: int) -> bytes:
        nonlocal offset
        chunk = bytes(view[offset : offset + n])
        offset += len(chunk)
        return chunk

    return read_header(read, min_chunk_size)
