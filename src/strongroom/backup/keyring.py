"""Repository secrets and the keys derived from them (format v1).

A repository has two kinds of 256-bit secrets, each a data key of the tenant's KMS key:

- the **index secret** (one per repository, made by ``init``): keys the chunker, names
  chunks and trees (keyed hashes), and seals index files and the config MAC. Writers
  need it to deduplicate; it opens no file contents.
- **data secrets** (one per ``create`` run, a *session*): seal packs and snapshots.
  Readers (restore, ls, check --read-data) need the data secrets; writers only make new
  ones, which is what lets a write-only agent back up without being able to read.

Each secret ``S`` with id ``sid`` gives ``PRK = HKDF(S, salt=repo_id,
info="strongroom-backup-v1 prk" || purpose || sid)``; every object key is
``HKDF-Expand(PRK, label || salt, 64)`` = a 32-byte AES key and a 32-byte commitment,
so each key seals exactly one object (a counter nonce inside it is safe).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import Enum

from strongroom.crypto.hazmat import hkdf_expand_sha256, hkdf_sha256

REPO_ID_BYTES = 16
SECRET_ID_BYTES = 16
SECRET_BYTES = 32
BLOB_ID_BYTES = 32
PREFIX = b"strongroom-backup-v1 "

CONTEXT_REPOSITORY = "strongroom:backup-repository"
CONTEXT_SECRET = "strongroom:backup-secret"  # noqa: S105 - a context key name
CONTEXT_PURPOSE = "strongroom:backup-purpose"


class Purpose(Enum):
    """What a secret is for; named in its KMS encryption context (write-only policies)."""

    INDEX = "index"
    DATA = "data"


def kms_context(repo_id: bytes, sid: bytes, purpose: Purpose) -> dict[str, str]:
    """The encryption context a secret is wrapped under: repository, secret id, purpose."""
    return {
        CONTEXT_REPOSITORY: repo_id.hex(),
        CONTEXT_SECRET: sid.hex(),
        CONTEXT_PURPOSE: purpose.value,
    }


def object_keys(prk: bytes, label: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """The (AES key, commitment) of one sealed object or pack: one HKDF-Expand."""
    okm = hkdf_expand_sha256(prk, PREFIX + label + b" " + salt, 64)
    return okm[:32], okm[32:]


@dataclass(frozen=True, slots=True)
class SessionKey:
    """A secret's pseudorandom key: seals packs, snapshots (data) or index files (index).

    Holds key material: no ``repr`` of it, no pickling.
    """

    repo_id: bytes
    sid: bytes
    purpose: Purpose
    prk: bytes = field(repr=False)

    @classmethod
    def derive(cls, repo_id: bytes, sid: bytes, purpose: Purpose, secret: bytes) -> SessionKey:
        """The PRK of ``secret`` for ``repo_id``, bound to its id and purpose."""
        if len(secret) != SECRET_BYTES or len(sid) != SECRET_ID_BYTES:
            raise ValueError("bad secret or secret id length")
        info = PREFIX + b"prk " + purpose.value.encode() + b" " + sid
        return cls(repo_id, sid, purpose, hkdf_sha256(secret, repo_id, info))

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("backup keys cannot be pickled")


@dataclass(frozen=True, slots=True)
class IndexKeys:
    """Everything derived from the index secret: chunker seed, id keys, sealing, MACs."""

    session: SessionKey
    chunker_seed: int = field(repr=False)
    data_id_key: bytes = field(repr=False)
    tree_id_key: bytes = field(repr=False)
    config_mac_key: bytes = field(repr=False)
    cache_mac_key: bytes = field(repr=False)

    @classmethod
    def derive(cls, repo_id: bytes, sid: bytes, secret: bytes) -> IndexKeys:
        """Derive every index-secret key (labels in docs/formats.md)."""
        session = SessionKey.derive(repo_id, sid, Purpose.INDEX, secret)

        def sub(label: str) -> bytes:
            return hkdf_expand_sha256(session.prk, PREFIX + label.encode())

        # pyfastcdc takes a seed below 2**63 (it shifts it left in 64 bits); 0 means unkeyed
        seed = (int.from_bytes(sub("chunker")[:8], "big") >> 1) or 1
        return cls(
            session,
            seed,
            sub("data-id"),
            sub("tree-id"),
            sub("config-mac"),
            sub("cache-mac"),
        )

    def data_id(self, chunk: bytes | memoryview) -> bytes:
        """The id of a data chunk: HMAC-SHA256 under the data-id key."""
        return hmac.digest(self.data_id_key, chunk, hashlib.sha256)

    def tree_id(self, tree: bytes) -> bytes:
        """The id of a tree: HMAC-SHA256 under the tree-id key."""
        return hmac.digest(self.tree_id_key, tree, hashlib.sha256)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("backup keys cannot be pickled")
