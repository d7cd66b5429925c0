"""The audit chain: how each event's hash links it to the one before.

``hash(n) = SHA-256("strongroom/audit/v1" || u64(seq) || hash(n-1) || body)`` with
``hash(0) = 32 zero bytes``. Rewriting, dropping, reordering or inserting any event breaks
every hash after it, so :func:`verify_chain` finds it offline from the store's records.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

from strongroom.ports.store import AuditRecord

GENESIS_HASH = bytes(32)
_LABEL = b"strongroom/audit/v1"


def chain_hash(prev_hash: bytes, seq: int, body: bytes) -> bytes:
    """Return the hash of event ``seq`` with ``body`` following ``prev_hash``."""
    return hashlib.sha256(_LABEL + struct.pack(">Q", seq) + prev_hash + body).digest()


class ChainBroken(Exception):
    """The audit chain does not verify; ``seq`` is the first event that fails."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit chain broken at event {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def verify_chain(
    records: Iterable[AuditRecord], prev_hash: bytes = GENESIS_HASH, prev_seq: int = 0
) -> tuple[int, bytes]:
    """Check consecutive records; return ``(last seq, last hash)`` or raise :class:`ChainBroken`."""
    for record in records:
        if record.seq != prev_seq + 1:
            raise ChainBroken(record.seq, f"expected event {prev_seq + 1}")
        if record.prev_hash != prev_hash:
            raise ChainBroken(record.seq, "previous hash does not match")
        if chain_hash(prev_hash, record.seq, record.body) != record.hash:
            raise ChainBroken(record.seq, "event hash does not match its body")
        prev_seq, prev_hash = record.seq, record.hash
    return prev_seq, prev_hash
