"""Check a store's whole audit chain, with its key, against the newest signed checkpoint.

Never raises for what it finds in the store: a cut tail, a rewritten or rehashed event,
renumbered events, a row whose column holds the wrong type, a table that cannot be read.
The first problem comes back as a :class:`~strongroom.ports.audit_chain.ChainBroken`
naming the event and the kind of damage.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.errors import StoreError
from strongroom.kms.audit_checkpoint import Checkpoint
from strongroom.ports import AuditRecord, Store
from strongroom.ports.audit_chain import (
    GENESIS_HASH,
    AuditChain,
    ChainBroken,
    MalformedAuditRecord,
    verify_chain,
)

PAGE = 5000
"""Events read per transaction."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify_audit` found: how far the chain verified, and the first problem."""

    events: int
    head: bytes
    keyed_from: int | None
    checkpoint: Checkpoint | None
    checkpoint_source: str | None
    broken: ChainBroken | None

    @property
    def intact(self) -> bool:
        """Whether the whole chain verified and matches the checkpoint."""
        return self.broken is None


def shown_time(seconds: int) -> str:
    """A checkpoint's time as ISO 8601 UTC."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="seconds")


def _page(store: Store, after: int, limit: int = PAGE) -> list[AuditRecord]:
    """One page of records; a row or table that cannot be read becomes ``ChainBroken``."""
    try:
        return store.read(lambda tx: tx.read_audit(after_seq=after, limit=limit))
    except MalformedAuditRecord as exc:
        raise ChainBroken(exc.seq, exc.reason, "malformed") from exc
    except Exception as exc:  # whatever the table holds, verify reports it (no traceback)
        cause = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ else exc
        raise ChainBroken(
            after + 1, f"the audit table cannot be read after event {after}: {cause}", "malformed"
        ) from exc


def walk(
    store: Store,
    chain: AuditChain,
    after: int = 0,
    prev: bytes = GENESIS_HASH,
    progress: Callable[[int], None] | None = None,
    want: int | None = None,
) -> tuple[int, bytes, bytes | None]:
    """Verify the chain after event ``after`` (whose hash is ``prev``) to its end.

    Returns ``(last seq, last hash, hash of event want)``; raises :class:`ChainBroken`.
    """
    seq, head, wanted = after, prev, None
    while True:
        try:
            page = _page(store, seq)
        except ChainBroken as exc:
            if exc.kind == "malformed" and exc.seq > seq + 1:
                # verify the good rows before the bad one first: the first problem wins
                verify_chain(_page(store, seq, exc.seq - seq - 1), head, seq, chain)
            raise
        if want is not None and wanted is None and page and page[0].seq <= want:
            wanted = next((r.hash for r in page if r.seq == want), None)
        seq, head = verify_chain(page, head, seq, chain)
        if progress is not None:
            progress(len(page))
        if len(page) < PAGE:
            return seq, head, wanted


def compare_with_checkpoint(
    seq: int, at_checkpoint: bytes | None, checkpoint: Checkpoint, source: str
) -> None:
    """Raise :class:`ChainBroken` if a chain ending at ``seq`` is behind or off ``checkpoint``."""
    written = shown_time(checkpoint.time)
    if seq < checkpoint.seq:
        span = (
            f"event {checkpoint.seq} is"
            if seq + 1 == checkpoint.seq
            else f"events {seq + 1}..{checkpoint.seq} are"
        )
        raise ChainBroken(
            seq + 1,
            f"the chain ends at event {seq} but the checkpoint {source} (written {written}) "
            f"records event {checkpoint.seq}: {span} missing (the tail was cut off)",
            "truncated",
        )
    if at_checkpoint != checkpoint.head:
        raise ChainBroken(
            checkpoint.seq,
            f"differs from the checkpoint {source} (written {written}): the event or those "
            "before it were replaced",
            "diverged",
        )


def verify_audit(
    store: Store,
    chain: AuditChain,
    checkpoint: Checkpoint | None,
    checkpoint_source: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify the whole chain with ``chain``'s key, then against ``checkpoint`` if given."""
    seq, head = 0, GENESIS_HASH
    broken: ChainBroken | None = None
    try:
        seq, head, at_checkpoint = walk(
            store, chain, progress=progress, want=None if checkpoint is None else checkpoint.seq
        )
        if checkpoint is not None:
            compare_with_checkpoint(seq, at_checkpoint, checkpoint, checkpoint_source or "")
    except ChainBroken as exc:
        broken = exc
    return VerifyReport(
        events=seq,
        head=head,
        keyed_from=chain.keyed_from if chain.keyed else None,
        checkpoint=checkpoint,
        checkpoint_source=checkpoint_source,
        broken=broken,
    )
