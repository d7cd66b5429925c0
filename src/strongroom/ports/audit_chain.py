"""The audit chain: how each event's hash links it to the one before, and how it is checked.

Two link formats, chosen by sequence number (:class:`AuditChain`):

- v1, unkeyed: ``hash(n) = SHA-256("strongroom/audit/v1" || u64(n) || hash(n-1) || body)``.
  Stores made before the chain was keyed hold a prefix of such events.
- v2, keyed: ``hash(n) = HMAC-SHA256(K, "strongroom/audit/v2" || u64(n) || hash(n-1) ||
  body)`` where ``K`` is the deployment's audit key, kept in the store wrapped by the root
  of trust. Without ``K`` nobody can rewrite an event and hash the rest again.

``hash(0) = 32 zero bytes``. The keyed part links to the unkeyed prefix through
``hash(n-1)``, so the first keyed event seals everything before it. :func:`verify_chain`
checks records offline and, when one fails, names it and says what was done to it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from strongroom.errors import StoreError
from strongroom.ports.store import AuditRecord

GENESIS_HASH = bytes(32)
HASH_BYTES = 32
_LABEL = b"strongroom/audit/v1"
_KEYED_LABEL = b"strongroom/audit/v2"
_SEQ = struct.Struct(">Q")
_RENUMBER_SEARCH = 1000
"""How far either side of its place verify looks for the number an event's hash was made for."""


def chain_hash(prev_hash: bytes, seq: int, body: bytes) -> bytes:
    """Return the unkeyed (v1) hash of event ``seq`` with ``body`` following ``prev_hash``."""
    return hashlib.sha256(_LABEL + struct.pack(">Q", seq) + prev_hash + body).digest()


def keyed_chain_hash(key: bytes, prev_hash: bytes, seq: int, body: bytes) -> bytes:
    """Return the keyed (v2) hash of event ``seq``: HMAC-SHA256 under the audit key."""
    return AuditChain(key).link(prev_hash, seq, body)


class AuditChain:
    """How the hash of each event is made: v1 before ``keyed_from``, v2 (keyed) from it.

    ``key`` is ``None`` for a chain that is not keyed at all (a store that was never
    opened with its root of trust). The key is secret: the object refuses ``repr`` of it
    and pickling.
    """

    __slots__ = ("_keyed", "keyed_from")

    def __init__(self, key: bytes | None, keyed_from: int = 1) -> None:
        if key is not None and len(key) != HASH_BYTES:
            raise ValueError("the audit key must be 32 bytes")
        # keyed once and copied per event: the key schedule is paid once, not per event
        # (a copy costs a fraction of hmac.digest's one-shot setup; the base is never
        # updated, so copies from several threads are safe)
        self._keyed = None if key is None else HMAC(key, hashes.SHA256())
        self.keyed_from = keyed_from

    def __repr__(self) -> str:
        if self._keyed is None:
            return "AuditChain(unkeyed)"
        return f"AuditChain(keyed from event {self.keyed_from}, <key hidden>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("the audit chain holds a key and cannot be pickled")

    @property
    def keyed(self) -> bool:
        """Whether events from :attr:`keyed_from` on are keyed."""
        return self._keyed is not None

    def is_keyed(self, seq: int) -> bool:
        """Whether event ``seq`` is hashed with the key."""
        return self._keyed is not None and seq >= self.keyed_from

    def link(self, prev_hash: bytes, seq: int, body: bytes) -> bytes:
        """The hash of event ``seq`` with ``body`` following ``prev_hash``."""
        if self._keyed is None or seq < self.keyed_from:
            return chain_hash(prev_hash, seq, body)
        mac = self._keyed.copy()
        mac.update(_KEYED_LABEL + struct.pack(">Q", seq) + prev_hash + body)
        return mac.finalize()

    def links(self, prev_hash: bytes, seq: int, bodies: Sequence[bytes]) -> list[bytes]:
        """The hashes of events ``seq + 1``, ``seq + 2``... with ``bodies``, after ``prev_hash``.

        The same as :meth:`link` body by body (each hash the next one's ``prev_hash``), in
        one loop: a batch of thousands of events is hashed while the flusher holds the GIL.
        """
        keyed = self._keyed
        if keyed is None or seq + 1 < self.keyed_from:
            out = []
            for body in bodies:
                seq += 1
                prev_hash = self.link(prev_hash, seq, body)
                out.append(prev_hash)
            return out
        copy, pack, label = keyed.copy, _SEQ.pack, _KEYED_LABEL
        hashes_: list[bytes] = []
        for body in bodies:
            seq += 1
            mac = copy()
            mac.update(b"".join((label, pack(seq), prev_hash, body)))
            prev_hash = mac.finalize()
            hashes_.append(prev_hash)
        return hashes_

    def mac(self, label: bytes, message: bytes) -> bytes:
        """HMAC-SHA256 of ``label || message`` under the audit key (checkpoints)."""
        if self._keyed is None:
            raise ValueError("an unkeyed chain signs nothing")
        mac = self._keyed.copy()
        mac.update(label + message)
        return mac.finalize()


UNKEYED = AuditChain(None)
"""The chain of a store that has no audit key: every event v1."""


class ChainBroken(Exception):
    """The audit chain does not verify; ``seq`` is the first event that fails.

    ``kind`` names what happened to it: ``missing`` (events deleted), ``renumbered``,
    ``unlinked`` (it no longer follows the event before it), ``forged`` (rehashed without
    the audit key), ``rewritten`` (its content no longer matches its hash), ``malformed``
    (a row that is not an audit record), ``truncated`` or ``diverged`` (the chain is behind
    or differs from a signed checkpoint).
    """

    def __init__(self, seq: int, reason: str, kind: str = "rewritten") -> None:
        super().__init__(f"audit chain broken at event {seq}: {reason}")
        self.seq = seq
        self.reason = reason
        self.kind = kind


class MalformedAuditRecord(StoreError):
    """A row of the audit table is not an audit record (a column's type or size is wrong)."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit event {seq} is malformed: {reason}")
        self.seq = seq
        self.reason = reason


def _blob(value: object, column: str, seq: int, size: int | None = None) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        shown = "NULL" if value is None else type(value).__name__
        raise MalformedAuditRecord(seq, f"column {column} holds {shown}, not bytes")
    data = bytes(value)
    if size is not None and len(data) != size:
        raise MalformedAuditRecord(seq, f"column {column} holds {len(data)} bytes, not {size}")
    return data


def record_from_row(row: Sequence[object], after_seq: int) -> AuditRecord:
    """An :class:`AuditRecord` from a ``(seq, body, prev_hash, hash)`` row, checked.

    ``after_seq`` is the event read before this row: a row whose own number is unusable
    is named as the one after it. Raises :class:`MalformedAuditRecord`.
    """
    if len(row) != 4:
        raise MalformedAuditRecord(after_seq + 1, f"the row has {len(row)} columns, not 4")
    raw_seq, body, prev_hash, digest = row
    if isinstance(raw_seq, bool) or not isinstance(raw_seq, int):
        shown = "NULL" if raw_seq is None else type(raw_seq).__name__
        raise MalformedAuditRecord(after_seq + 1, f"column seq holds {shown}, not an integer")
    return AuditRecord(
        raw_seq,
        _blob(body, "body", raw_seq),
        _blob(prev_hash, "prev_hash", raw_seq, HASH_BYTES),
        _blob(digest, "hash", raw_seq, HASH_BYTES),
    )


def _renumbered_from(chain: AuditChain, record: AuditRecord, prev_hash: bytes) -> int | None:
    """The sequence number ``record``'s hash was made for, if it is a nearby other one."""
    low = max(1, record.seq - _RENUMBER_SEARCH)
    for seq in range(low, record.seq + _RENUMBER_SEARCH + 1):
        if seq == record.seq:
            continue
        for prev in (record.prev_hash, prev_hash):
            if chain.link(prev, seq, record.body) == record.hash:
                return seq
    return None


def diagnose(
    chain: AuditChain, record: AuditRecord, prev_hash: bytes, prev_seq: int
) -> ChainBroken:
    """Why ``record`` does not follow ``(prev_seq, prev_hash)``: the first-failure report."""
    seq = record.seq
    if seq > prev_seq + 1:
        first, last = prev_seq + 1, seq - 1
        span = f"event {first} is" if first == last else f"events {first}..{last} are"
        return ChainBroken(first, f"{span} missing (deleted from the store)", "missing")
    if seq <= prev_seq:
        return ChainBroken(seq, f"appears again after event {prev_seq} (duplicated)", "renumbered")
    own = chain.link(record.prev_hash, seq, record.body) == record.hash
    if not own:
        moved = _renumbered_from(chain, record, prev_hash)
        if moved is not None:
            return ChainBroken(
                seq,
                f"its hash was made for event {moved}: events were deleted or moved and "
                "the rest renumbered",
                "renumbered",
            )
    if record.prev_hash != prev_hash:
        if own:
            return ChainBroken(
                seq,
                f"does not follow event {prev_seq}: events before it were replaced, "
                "inserted or reordered",
                "unlinked",
            )
        return ChainBroken(seq, "neither its link nor its hash match (replaced)", "rewritten")
    if own:  # pragma: no cover - only reached when the caller's own check was wrong
        return ChainBroken(seq, "inconsistent check", "rewritten")
    if chain.is_keyed(seq) and chain_hash(prev_hash, seq, record.body) == record.hash:
        return ChainBroken(
            seq,
            "rehashed with the unkeyed algorithm: rewritten by someone without the audit key",
            "forged",
        )
    keyed = "keyed " if chain.is_keyed(seq) else ""
    return ChainBroken(
        seq, f"its content does not match its {keyed}hash (edited in the store)", "rewritten"
    )


def verify_chain(
    records: Iterable[AuditRecord],
    prev_hash: bytes = GENESIS_HASH,
    prev_seq: int = 0,
    chain: AuditChain = UNKEYED,
) -> tuple[int, bytes]:
    """Check consecutive records; return ``(last seq, last hash)`` or raise :class:`ChainBroken`."""
    link = chain.link
    for record in records:
        seq = record.seq
        if (
            seq != prev_seq + 1
            or record.prev_hash != prev_hash
            or link(prev_hash, seq, record.body) != record.hash
        ):
            raise diagnose(chain, record, prev_hash, prev_seq)
        prev_seq, prev_hash = seq, record.hash
    return prev_seq, prev_hash
