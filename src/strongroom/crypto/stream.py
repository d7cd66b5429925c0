"""Chunked stream format, version 1: the header, the key schedule and one chunk at a time.

Layout (all integers big-endian; the full byte-by-byte spec is in docs/formats.md)::

    header  = "SRCS" || u8 version=1 || u8 suite=1 || u8 flags=0 || u8 log2(chunk_size)
              || salt(32) || u16 len || canonical context || u16 len || key id (UTF-8)
              || u16 len || wrapped data key || commitment(32) || header MAC(32)
    chunk i = AES-256-GCM(K_i, nonce_i, plaintext_i, aad_i) || tag(16)

    PRK        = HKDF-Extract(salt, data key)                       (HMAC-SHA256)
    commitment = HKDF-Expand(PRK, "strongroom/stream/v1/commit", 32)
    header MAC = HMAC-SHA256(HKDF-Expand(PRK, "strongroom/stream/v1/header", 32),
                             every header byte before the MAC)
    K_i        = HKDF-Expand(PRK, "strongroom/stream/v1/chunk" || u64 i, 32)
    nonce_i    = 0x000000 || u64 i || u8 final
    aad_i      = SHA-256(header) || u64 i || u8 final || u32 len(plaintext_i)

Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the last (final)
chunk holds 0 to ``chunk_size - 1`` and is always present, so an empty stream is one empty
final chunk and the plaintext length follows from the ciphertext length. A reader checks
the commitment in constant time before anything else, then the header MAC, then each chunk.
Every failure is one :class:`InvalidStream`, without detail.
"""

from __future__ import annotations

import hashlib
import struct
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.context import decode_context, encode_context
from strongroom.crypto.hazmat import (
    KEY_BYTES,
    TAG_BYTES,
    constant_time_equal,
    hkdf_expand_sha256,
    hmac_sha256,
    random_bytes,
)

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
_LABEL = b"strongroom/stream/v1/"
_U64 = struct.Struct(">Q")
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


class StreamKeys:
    """The key schedule of one stream (PRK and what it derives). Holds secret material.

    Refuses ``repr`` detail and pickling, so the PRK cannot leak through logs or caches.
    """

    __slots__ = ("_header_key", "_prk")

    def __init__(self, data_key: bytes, salt: bytes) -> None:
        # HKDF-Extract(salt, IKM) is by definition HMAC-Hash(salt, IKM) (RFC 5869, 2.2).
        self._prk = hmac_sha256(salt, data_key)
        self._header_key = hkdf_expand_sha256(self._prk, _LABEL + b"header")

    def commitment(self) -> bytes:
        """The 32-byte key commitment of this (data key, salt)."""
        return hkdf_expand_sha256(self._prk, _LABEL + b"commit")

    def header_mac(self, body: bytes) -> bytes:
        """HMAC-SHA256 of the header bytes before the MAC."""
        return hmac_sha256(self._header_key, body)

    def chunk_cipher(self, index: int) -> AESGCM:
        """AES-256-GCM under K_i, the key of chunk ``index`` alone."""
        return AESGCM(hkdf_expand_sha256(self._prk, _LABEL + b"chunk" + _U64.pack(index)))

    def __repr__(self) -> str:
        return "StreamKeys(<hidden>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("stream keys cannot be pickled")


def _nonce(index: int, final: bool) -> bytes:
    return b"\x00\x00\x00" + _U64.pack(index) + (b"\x01" if final else b"\x00")


def _aad(digest: bytes, index: int, final: bool, length: int) -> bytes:
    return digest + _U64.pack(index) + (b"\x01" if final else b"\x00") + struct.pack(">I", length)


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


class StreamSealer:
    """Encrypts one stream's chunks, strictly in order, ending with exactly one final chunk.

    The header is built at construction (a fresh random salt unless one is given for test
    vectors). :meth:`seal_into` refuses anything that would not form a valid stream.
    """

    __slots__ = ("_digest", "_done", "_index", "_keys", "header")

    def __init__(
        self,
        data_key: bytes,
        *,
        key_id: str,
        wrapped_key: bytes,
        context: Mapping[str, str] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        salt: bytes | None = None,
        min_chunk_size: int = MIN_CHUNK_SIZE,
    ) -> None:
        if len(data_key) != KEY_BYTES:
            raise ValueError("the data key must be 32 bytes")
        salt = random_bytes(SALT_BYTES) if salt is None else salt
        self._keys = StreamKeys(data_key, salt)
        self.header = build_header(
            self._keys,
            chunk_size=chunk_size,
            salt=salt,
            context=context,
            key_id=key_id,
            wrapped_key=wrapped_key,
            min_chunk_size=min_chunk_size,
        )
        self._digest = hashlib.sha256(self.header.raw).digest()
        self._index = 0
        self._done = False

    @property
    def chunk_size(self) -> int:
        """Plaintext bytes in every chunk but the final one."""
        return self.header.chunk_size

    @property
    def finished(self) -> bool:
        """Whether the final chunk has been sealed."""
        return self._done

    def seal_into(
        self, plaintext: bytes | bytearray | memoryview, final: bool, out: memoryview
    ) -> int:
        """Encrypt the next chunk into ``out`` (exactly ``len(plaintext) + 16`` bytes).

        A non-final chunk must hold exactly ``chunk_size`` bytes, the final one fewer.
        Returns the number of bytes written.
        """
        length = len(plaintext)
        if self._done:
            raise ValueError("the final chunk was sealed already")
        if (length >= self.chunk_size) if final else (length != self.chunk_size):
            raise ValueError("chunk length does not fit its position")
        index = self._index
        self._keys.chunk_cipher(index).encrypt_into(
            _nonce(index, final), plaintext, _aad(self._digest, index, final, length), out
        )
        self._index += 1
        self._done = final
        return length + TAG_BYTES

    def seal(self, plaintext: bytes | bytearray | memoryview, final: bool) -> bytes:
        """Encrypt the next chunk and return ciphertext || tag."""
        out = bytearray(len(plaintext) + TAG_BYTES)
        self.seal_into(plaintext, final, memoryview(out))
        return bytes(out)

    def __repr__(self) -> str:
        return f"StreamSealer(header={self.header!r})"


class StreamOpener:
    """Decrypts chunks of one stream, in any order, after checking its header.

    Construction checks the commitment (constant time) before anything else, then the
    header MAC; either failing raises :class:`InvalidStream`.
    """

    __slots__ = ("_digest", "_keys", "header")

    def __init__(self, header: StreamHeader, data_key: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise InvalidStream
        keys = StreamKeys(data_key, header.salt)
        if not constant_time_equal(keys.commitment(), header.commitment):
            raise InvalidStream
        if not constant_time_equal(keys.header_mac(header.raw[:-MAC_BYTES]), header.mac):
            raise InvalidStream
        self._keys = keys
        self.header = header
        self._digest = hashlib.sha256(header.raw).digest()

    def open_into(
        self, index: int, ciphertext: bytes | bytearray | memoryview, final: bool, out: memoryview
    ) -> int:
        """Decrypt chunk ``index`` into ``out`` (exactly ``len(ciphertext) - 16`` bytes).

        On failure ``out`` is zeroed before :class:`InvalidStream` is raised, so no
        unverified plaintext is ever left behind. Returns the plaintext length.
        """
        length = len(ciphertext) - TAG_BYTES
        limit = self.header.chunk_size
        if length < 0 or ((length >= limit) if final else (length != limit)):
            raise InvalidStream
        if len(out) != length:
            raise ValueError("output buffer must hold exactly the chunk's plaintext")
        if not 0 <= index < 1 << 64:
            raise InvalidStream
        try:
            self._keys.chunk_cipher(index).decrypt_into(
                _nonce(index, final), ciphertext, _aad(self._digest, index, final, length), out
            )
        except (InvalidTag, ValueError) as exc:
            out[:] = bytes(len(out))
            raise InvalidStream from exc
        return length

    def open(self, index: int, ciphertext: bytes | bytearray | memoryview, final: bool) -> bytes:
        """Decrypt chunk ``index`` and return its plaintext."""
        out = bytearray(max(len(ciphertext) - TAG_BYTES, 0))
        self.open_into(index, ciphertext, final, memoryview(out))
        return bytes(out)

    def __repr__(self) -> str:
        return f"StreamOpener(header={self.header!r})"
