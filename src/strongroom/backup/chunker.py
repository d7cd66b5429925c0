"""Keyed content-defined chunking: FastCDC (pyfastcdc, compiled) with a secret gear seed.

The gear table is pyfastcdc's XORed with a 63-bit seed derived from the index secret
(``HKDF-Expand(PRK_index, "strongroom-backup-v1 chunker")``). That is the keying the
compiled chunker offers, and alone it is weak: an attacker who sees the lengths of many
chunks of data they chose can recover such a seed (the 2025 attacks on keyed CDC). So
the format's real defence is that chunk lengths are never visible: blobs are compressed,
their lengths are only in encrypted pack headers and encrypted index files, and each pack
header carries random zero padding. Someone holding the repository files sees pack sizes
(16 MiB of blobs from many files each), not chunk sizes. docs/formats.md says more.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyfastcdc import FastCDC

from strongroom.backup.config import RepoConfig


class Chunker:
    """Cuts buffers into content-defined chunks for one repository."""

    def __init__(self, config: RepoConfig, seed: int) -> None:
        self._cdc = FastCDC(
            config.avg_chunk,
            min_size=config.min_chunk,
            max_size=config.max_chunk,
            normalized_chunking=1,
            seed=seed,
        )
        self.max_chunk = config.max_chunk

    def cut(self, buffer: bytes | bytearray | memoryview) -> Iterator[tuple[int, int]]:
        """``(offset, length)`` of each chunk of ``buffer`` (the last one ends the buffer)."""
        for chunk in self._cdc.cut_buf(buffer):
            yield chunk.offset, chunk.length

    def __repr__(self) -> str:
        return "Chunker(...)"
