"""The key schedule of a chunked stream (format v1): PRK, commitment, header key, chunk keys.

::

    PRK        = HKDF-Extract(salt, data key)                       (HMAC-SHA256)
    commitment = HKDF-Expand(PRK, "strongroom/stream/v1/commit", 32)
    header key = HKDF-Expand(PRK, "strongroom/stream/v1/header", 32)
    K_i        = HKDF-Expand(PRK, "strongroom/stream/v1/chunk" || u64 i, 32)

The layout that uses them is in :mod:`strongroom.crypto.stream`.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.hazmat import hkdf_expand_sha256, hmac_sha256

_LABEL = b"strongroom/stream/v1/"
_U64 = struct.Struct(">Q")


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
