"""One deployment's key service, built in one place: :func:`open_service`.

The server's workers, every CLI command and ``strongroom init`` build the service of a
data directory here, from its :class:`~strongroom.config.DataDirConfig`: the key store the
configuration names, its root of trust, the system clock and the standard authoriser.
Nothing else constructs a production :class:`~strongroom.kms.KeyService`.
"""

from __future__ import annotations

from pathlib import Path

from strongroom.audittrail import CheckpointFile
from strongroom.audittrail.checkpoint_file import CHECKPOINT_FILE
from strongroom.config import DataDirConfig
from strongroom.errors import StoreError
from strongroom.kms import KeyService
from strongroom.kms.audit_checkpoint import Checkpoint
from strongroom.kms.audit_key import load_audit_chain, open_audit_chain
from strongroom.kms.audit_log import MAX_PENDING, AuditLog
from strongroom.ports import Clock, RootOfTrust, Store, SystemClock
from strongroom.rootkey import open_root_of_trust
from strongroom.store import open_store
from strongroom.store_trust import seal_for_data_dir


def open_service(
    config: DataDirConfig,
    data_dir: Path,
    *,
    clock: Clock | None = None,
    create_root: bool = False,
    audit_fail_open: bool = False,
    audit_backlog: int = MAX_PENDING,
) -> KeyService:
    """Open the store and root of trust ``config`` names and build the key service on them.

    ``data_dir`` holds the local master key (root of trust ``local``). With
    ``create_root`` a missing root key is made (``strongroom init``); an existing one is
    used, never replaced. The caller closes the service (:meth:`KeyService.close` flushes
    the audit buffer and releases both).

    The audit chain is keyed with the store's audit key (made now if the store has none:
    a store from before keyed audit has its unkeyed events verified and sealed by a first
    signed checkpoint), and checkpointed to ``DATA_DIR/audit-checkpoint.json``. With
    ``audit_fail_open`` operations go on when the audit log cannot be written (events past
    ``audit_backlog`` are dropped); by default they are refused past that backlog.
    """
    clock = clock if clock is not None else SystemClock()
    store = open_store(config.store_url)
    try:
        root = open_root_of_trust(config.root_of_trust, data_dir, create=create_root)
    except BaseException:
        store.close()
        raise
    try:
        sealed_store = seal_for_data_dir(store, root, data_dir, config.store_url)
        _refuse_lost_audit_key(sealed_store, root, data_dir)
        chain, sealed = open_audit_chain(sealed_store, root)
        checkpoints = CheckpointFile(data_dir, chain)
        if sealed is not None:  # the first keyed checkpoint seals the unkeyed prefix
            checkpoints.publish(
                Checkpoint(sealed.seq, sealed.head, chain.keyed_from, int(clock.now()))
            )
    except BaseException:
        store.close()
        root.close()
        raise
    audit = AuditLog(
        sealed_store,
        clock,
        chain,
        checkpoints,
        max_pending=audit_backlog,
        fail_open=audit_fail_open,
    )
    return KeyService(sealed_store, root, clock, audit_log=audit)


def _refuse_lost_audit_key(store: Store, root: RootOfTrust, data_dir: Path) -> None:
    """Refuse to key anew a store whose audit key went missing while checkpoints exist.

    Only a store that was keyed has checkpoints: one without its audit key beside a
    checkpoint file had the key's record deleted (or the whole store replaced), perhaps to
    pass a rehashed chain off as one from before keyed audit.
    """
    path = data_dir / CHECKPOINT_FILE
    if not path.exists() or store.read(lambda tx: load_audit_chain(tx, root)) is not None:
        return
    raise StoreError(
        f"this store has no audit key, but {path} holds checkpoints of a keyed audit chain: "
        "the audit key record was deleted from the store, or the store was replaced. "
        "Refusing to key it anew; restore the store, or move the checkpoint file away to "
        "accept the store as it is"
    )
