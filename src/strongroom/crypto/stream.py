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

This module is the chunk codec (:class:`StreamSealer`, :class:`StreamOpener`); the header is
:mod:`.stream_header`'s and the key schedule :mod:`.stream_keys`'s, both re-exported here.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag

from strongroom.crypto.hazmat import KEY_BYTES, TAG_BYTES, constant_time_equal, random_bytes
from strongroom.crypto.stream_header import (
    COMMITMENT_BYTES,
    DEFAULT_CHUNK_SIZE,
    FIXED_PREFIX_BYTES,
    MAC_BYTES,
    MAGIC,
    MAX_CHUNK_SIZE,
    MAX_CONTEXT_BYTES,
    MAX_KEY_ID_BYTES,
    MAX_WRAPPED_KEY_BYTES,
    MIN_CHUNK_SIZE,
    SALT_BYTES,
    STREAM_VERSION,
    SUITE_AES256GCM_HKDF_SHA256_COMMIT,
    TEST_MIN_CHUNK_SIZE,
    InvalidStream,
    NotAStream,
    StreamHeader,
    build_header,
    check_chunk_size,
    parse_header,
    read_header,
)
from strongroom.crypto.stream_keys import StreamKeys

__all__ = [
    "COMMITMENT_BYTES",
    "DEFAULT_CHUNK_SIZE",
    "FIXED_PREFIX_BYTES",
    "MAC_BYTES",
    "MAGIC",
    "MAX_CHUNK_SIZE",
    "MAX_CONTEXT_BYTES",
    "MAX_KEY_ID_BYTES",
    "MAX_WRAPPED_KEY_BYTES",
    "MIN_CHUNK_SIZE",
    "SALT_BYTES",
    "STREAM_VERSION",
    "SUITE_AES256GCM_HKDF_SHA256_COMMIT",
    "TEST_MIN_CHUNK_SIZE",
    "InvalidStream",
    "NotAStream",
    "StreamHeader",
    "StreamKeys",
    "StreamOpener",
    "StreamSealer",
    "build_header",
    "check_chunk_size",
    "parse_header",
    "read_header",
]

_U64 = struct.Struct(">Q")


def _nonce(index: int, final: bool) -> bytes:
    return b"\x00\x00\x00" + _U64.pack(index) + (b"\x01" if final else b"\x00")


def _aad(digest: bytes, index: int, final: bool, length: int) -> bytes:
    return digest + _U64.pack(index) + (b"\x01" if final else b"\x00") + struct.pack(">I", length)


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
