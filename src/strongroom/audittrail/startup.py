"""The start check: a server does not start on a store whose audit chain is behind its checkpoint.

:func:`check_at_start` reads the newest checkpoint of the data directory and checks the
store against it: the checkpointed event must be there with the same hash, and every event
after it must verify with the audit key. Without a checkpoint file the whole chain is
verified once. On success the current head is checkpointed. On a problem the server
refuses to start, naming the checkpoint file and the events, unless the operator accepts
the store as it is (``--accept-audit-rollback``): then the acceptance is itself recorded
in the audit chain and the head checkpointed anew, so the history keeps the gap.
"""

from __future__ import annotations

import logging

from strongroom.audittrail.checkpoint_file import CheckpointFile
from strongroom.audittrail.verify import compare_with_checkpoint, walk
from strongroom.errors import StoreError
from strongroom.kms import KeyService
from strongroom.kms.audit_checkpoint import Checkpoint, CheckpointInvalid
from strongroom.ports import AuditRecord, Store
from strongroom.ports.audit_chain import ChainBroken

ACCEPT_FLAG = "--accept-audit-rollback"
_log = logging.getLogger("strongroom.audit")


class AuditBehindCheckpoint(StoreError):
    """The store's audit chain is behind, or differs from, its last signed checkpoint."""


def _last_record(store: Store) -> AuditRecord | None:
    """The newest record, read without verifying (the accept path only)."""
    last: AuditRecord | None = None
    after = 0
    while True:
        page = store.read(lambda tx, a=after: tx.read_audit(after_seq=a, limit=5000))  # type: ignore[misc]
        if not page:
            return last
        last, after = page[-1], page[-1].seq


def _problem(store: KeyService, sink: CheckpointFile) -> tuple[str | None, int, bytes]:
    """What is wrong with the store's chain against the checkpoint, and the verified head."""
    chain = store.audit.chain
    try:
        checkpoint = sink.read()
    except CheckpointInvalid as exc:
        return f"the checkpoint file {sink.path} is not valid for this store ({exc})", 0, b""
    except OSError as exc:
        return f"the checkpoint file {sink.path} cannot be read ({exc})", 0, b""
    try:
        if checkpoint is None:
            seq, head, _ = walk(store.store, chain)
            return None, seq, head
        at = store.store.read(lambda tx: tx.read_audit(after_seq=checkpoint.seq - 1, limit=1))
        if not at or at[0].seq != checkpoint.seq or at[0].hash != checkpoint.head:
            try:  # find the first bad event from the start, for a precise report
                seq, _, at_checkpoint = walk(store.store, chain, want=checkpoint.seq)
            except ChainBroken as exc:
                return (
                    f"audit chain broken at event {exc.seq} ({exc.kind}): {exc.reason}; "
                    f"the checkpoint {sink.path} records event {checkpoint.seq}",
                    0,
                    b"",
                )
            compare_with_checkpoint(seq, at_checkpoint, checkpoint, str(sink.path))
        seq, head, _ = walk(store.store, chain, checkpoint.seq, checkpoint.head)
        return None, seq, head
    except ChainBroken as exc:
        return f"audit chain broken at event {exc.seq} ({exc.kind}): {exc.reason}", 0, b""


def check_at_start(service: KeyService, sink: CheckpointFile, accept: bool = False) -> str | None:
    """Refuse (raise :class:`AuditBehindCheckpoint`) a store whose audit is behind its checkpoint.

    With ``accept`` the store is taken as it is: the problem is recorded in the audit
    chain, the head checkpointed anew and the problem returned (for the operator's log).
    Returns ``None`` when all was well (the head is checkpointed then too).
    """
    audit = service.audit
    if not audit.chain.keyed:
        raise StoreError("the audit chain of this store has no key (it was not opened)")
    problem, seq, head = _problem(service, sink)
    now = int(service.clock.now())
    if problem is None:
        if seq:
            sink.publish(Checkpoint(seq, head, audit.chain.keyed_from, now))
        return None
    if not accept:
        raise AuditBehindCheckpoint(
            f"{problem}. Refusing to start: a store whose audit log is behind its last "
            f"checkpoint may have lost or rewritten events. 'strongroom admin audit verify' "
            f"shows the first bad event; start with {ACCEPT_FLAG} to accept the store as it "
            "is (recorded in the audit log, and checkpointed anew)."
        )
    last = _last_record(service.store)
    if last is not None:  # the new reference point, so the appends below may go on
        restart = Checkpoint(last.seq, last.hash, audit.chain.keyed_from, now)
        sink.publish(restart, replace_newer=True)
    _log.warning("accepting the audit chain as it is (%s): %s", ACCEPT_FLAG, problem)
    audit.record({"operation": "AcceptAuditRollback", "problem": problem, "result": "Success"})
    audit.flush()
    audit.publish_checkpoint()
    return problem
