"""The repository config and key files (format v1): clear, small, written once each.

``config``::

    magic "SRBC" | version 0x01 | u32 n | n bytes canonical JSON | HMAC-SHA256(config-mac key,
    everything before it)

    JSON: {"v": 1, "repository": hex 16 bytes, "index_secret": hex 16-byte secret id,
           "chunker": {"min": int, "avg": int, "max": int}, "pack_size": int,
           "zstd_level": int}

The MAC key derives from the index secret, so the config is trusted only after that
secret came back from the KMS under a context naming this repository.

``keys/<sid>-<first 16 hex of SHA-256>`` (one secret wrapped under one KMS key)::

    magic "SRBK" | version 0x01 | canonical JSON {"v": 1, "repository", "secret", "purpose",
    "kms_key", "wrapped": base64, "created"}

A key file holds no secret: the wrapped key opens only through the KMS, under the
encryption context (repository, secret id, purpose), so a key file moved to another
repository or secret fails there. Rotation writes a new key file, then deletes the old.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
from dataclasses import dataclass
from typing import Any

from strongroom.backup.errors import CorruptError
from strongroom.backup.keyring import (
    REPO_ID_BYTES,
    SECRET_ID_BYTES,
    IndexKeys,
    Purpose,
    kms_context,
)
from strongroom.crypto.hazmat import constant_time_equal

CONFIG_MAGIC = b"SRBC"
KEY_MAGIC = b"SRBK"
VERSION = 1
MIN_CHUNK = 512 << 10
AVG_CHUNK = 1 << 20
MAX_CHUNK = 8 << 20
PACK_SIZE = 16 << 20
ZSTD_LEVEL = 1
_CORRUPT = "The repository config is corrupt."


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """Repository parameters, fixed at ``init``."""

    repo_id: bytes
    index_sid: bytes
    min_chunk: int = MIN_CHUNK
    avg_chunk: int = AVG_CHUNK
    max_chunk: int = MAX_CHUNK
    pack_size: int = PACK_SIZE
    zstd_level: int = ZSTD_LEVEL

    def body(self) -> bytes:
        """The canonical JSON."""
        return _canonical(
            {
                "v": VERSION,
                "repository": self.repo_id.hex(),
                "index_secret": self.index_sid.hex(),
                "chunker": {"min": self.min_chunk, "avg": self.avg_chunk, "max": self.max_chunk},
                "pack_size": self.pack_size,
                "zstd_level": self.zstd_level,
            }
        )

    def encode(self, keys: IndexKeys) -> bytes:
        """The config file, MACed under the index secret."""
        body = self.body()
        head = CONFIG_MAGIC + bytes((VERSION,)) + struct.pack(">I", len(body)) + body
        return head + hmac.digest(keys.config_mac_key, head, hashlib.sha256)

    @classmethod
    def parse_unverified(cls, data: bytes) -> RepoConfig:
        """Read the config's fields (before the key to check it is known)."""
        try:
            if data[:4] != CONFIG_MAGIC or data[4] != VERSION:
                raise CorruptError(_CORRUPT)
            (n,) = struct.unpack_from(">I", data, 5)
            if len(data) != 9 + n + 32:
                raise CorruptError(_CORRUPT)
            doc = json.loads(data[9 : 9 + n])
            chunker = doc["chunker"]
            config = cls(
                bytes.fromhex(doc["repository"]),
                bytes.fromhex(doc["index_secret"]),
                int(chunker["min"]),
                int(chunker["avg"]),
                int(chunker["max"]),
                int(doc["pack_size"]),
                int(doc["zstd_level"]),
            )
        except (IndexError, KeyError, TypeError, ValueError, struct.error) as exc:
            raise CorruptError(_CORRUPT) from exc
        if len(config.repo_id) != REPO_ID_BYTES or len(config.index_sid) != SECRET_ID_BYTES:
            raise CorruptError(_CORRUPT)
        if doc["v"] != VERSION or data[9 : 9 + n] != config.body():
            raise CorruptError(_CORRUPT)
        return config

    def verify(self, data: bytes, keys: IndexKeys) -> None:
        """Check the config file's MAC; :class:`CorruptError` if it fails."""
        expected = hmac.digest(keys.config_mac_key, data[:-32], hashlib.sha256)
        if not constant_time_equal(expected, data[-32:]):
            raise CorruptError(_CORRUPT)


@dataclass(frozen=True, slots=True)
class KeyFile:
    """One repository secret wrapped under one KMS key."""

    repo_id: bytes
    sid: bytes
    purpose: Purpose
    kms_key: str
    wrapped: bytes
    created: str

    @property
    def context(self) -> dict[str, str]:
        """The KMS encryption context of the wrapped secret."""
        return kms_context(self.repo_id, self.sid, self.purpose)

    def encode(self) -> bytes:
        """The key file's bytes."""
        return (
            KEY_MAGIC
            + bytes((VERSION,))
            + _canonical(
                {
                    "v": VERSION,
                    "repository": self.repo_id.hex(),
                    "secret": self.sid.hex(),
                    "purpose": self.purpose.value,
                    "kms_key": self.kms_key,
                    "wrapped": base64.b64encode(self.wrapped).decode(),
                    "created": self.created,
                }
            )
        )

    def name(self) -> str:
        """``<sid hex>-<first 16 hex of the SHA-256 of the file>``."""
        return f"{self.sid.hex()}-{hashlib.sha256(self.encode()).hexdigest()[:16]}"

    @classmethod
    def decode(cls, data: bytes) -> KeyFile:
        """Parse a key file; :class:`CorruptError` if malformed."""
        try:
            if data[:4] != KEY_MAGIC or data[4] != VERSION:
                raise CorruptError("A key file is corrupt.")
            doc = json.loads(data[5:])
            if doc["v"] != VERSION:
                raise CorruptError("A key file is corrupt.")
            key = cls(
                bytes.fromhex(doc["repository"]),
                bytes.fromhex(doc["secret"]),
                Purpose(doc["purpose"]),
                str(doc["kms_key"]),
                base64.b64decode(doc["wrapped"], validate=True),
                str(doc["created"]),
            )
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise CorruptError("A key file is corrupt.") from exc
        if len(key.repo_id) != REPO_ID_BYTES or len(key.sid) != SECRET_ID_BYTES:
            raise CorruptError("A key file is corrupt.")
        return key
