"""Back up a whole key store into the keystore backup format, and restore one.

:func:`backup_store` reads every record and the audit chain in one read transaction (one
consistent snapshot) and streams them page by page into a
:class:`~strongroom.kms.keystore_backup.BackupWriter`; :func:`restore_store` streams a
backup back in one write transaction, so a restore is all or nothing: a damaged chunk at
the very end leaves the target store empty. Neither holds more than one page of records
and one chunk in memory. The backup key is wrapped by the root of trust, so only a
deployment with the same root of trust opens the backup.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import BinaryIO

from strongroom import __version__
from strongroom.crypto.hazmat import new_key
from strongroom.errors import RootOfTrustError, StoreError, ValidationError
from strongroom.kms.audit_key import (
    AUDIT_KEY_KIND,
    AUDIT_KEY_NAME,
    load_audit_chain,
    read_audit_chain,
)
from strongroom.kms.audit_log import AuditLog
from strongroom.kms.keystore_backup import (
    BACKUP_ID_BYTES,
    DEFAULT_CHUNK_SIZE,
    BackupHeader,
    BackupReader,
    BackupSummary,
    BackupWriter,
    StoreEntry,
    backup_key_identity,
    read_header,
)
from strongroom.ports import GLOBAL_TENANT, AuditRecord, RootOfTrust, Store, StoreTx, SystemClock
from strongroom.ports.audit_chain import (
    GENESIS_HASH,
    UNKEYED,
    AuditChain,
    ChainBroken,
    verify_chain,
)

PAGE = 2000
"""Records or audit events read per scan."""
BATCH = 10_000
"""Records or audit events inserted per bulk insert on restore."""

Progress = Callable[[str, int], None]
"""Told ``(stage, n)`` after ``n`` more items of ``stage`` (``records``, ``audit``) are done."""


def _no_progress(stage: str, n: int) -> None:
    """Report nothing."""


def count_records(store: Store) -> int:
    """Return how many records the store holds (for a progress bar's total)."""

    def unit(tx: StoreTx) -> int:
        return sum(tx.count(t, k) for t in tx.tenants() for k in tx.kinds(t))

    return store.read(unit)


def backup_store(
    store: Store,
    root: RootOfTrust,
    sink: BinaryIO,
    progress: Progress = _no_progress,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> BackupSummary:
    """Write every record and audit event of ``store`` to ``sink``, encrypted.

    The audit chain is verified on the way: a store whose chain is broken is not backed
    up (``StoreError`` names the event), since its restore could not reproduce the chain.
    """
    backup_id = os.urandom(BACKUP_ID_BYTES)
    key = new_key()
    wrapped = root.wrap(key, backup_key_identity(backup_id))
    header = BackupHeader.build(chunk_size, backup_id, wrapped)
    meta = {
        "created_at": time.time(),
        "strongroom_version": __version__,
        "root_of_trust": root.description,
    }

    def unit(tx: StoreTx) -> BackupSummary:
        chain = load_audit_chain(tx, root) or UNKEYED
        writer = BackupWriter(sink, key, header, meta)
        for tenant in tx.tenants():
            for kind in tx.kinds(tenant):
                after: str | None = None
                while True:
                    page = tx.scan(tenant, kind, after=after, limit=PAGE)
                    for name, value in page:
                        writer.add_record(tenant, kind, name, value)
                    progress("records", len(page))
                    if len(page) < PAGE:
                        break
                    after = page[-1][0]
        seq, prev = 0, GENESIS_HASH
        while True:
            events = tx.read_audit(after_seq=seq, limit=PAGE)
            try:
                seq, prev = verify_chain(events, prev, seq, chain)
            except ChainBroken as exc:
                raise StoreError(
                    f"the audit chain is broken at event {exc.seq} ({exc.reason}); "
                    "not backing up: run 'strongroom admin audit verify'"
                ) from exc
            for event in events:
                writer.add_audit(event)
            progress("audit", len(events))
            if len(events) < PAGE:
                break
        return writer.finish()

    summary = store.read(unit)
    _audit(store, root, "BackupKeystore", summary)
    return summary


def _audit(store: Store, root: RootOfTrust, operation: str, summary: BackupSummary) -> None:
    """Record a backup or restore in the audit chain (who has a copy of the keystore)."""
    log = AuditLog(store, SystemClock(), read_audit_chain(store, root))
    log.record(
        {
            "operation": operation,
            "backupId": summary.backup_id.hex(),
            "records": summary.records,
            "auditEvents": summary.audit_events,
            "result": "Success",
        }
    )
    log.flush()


def open_backup(root: RootOfTrust, source: BinaryIO) -> tuple[BackupHeader, bytes]:
    """Read the header of a backup and unwrap its key with ``root``."""
    header = read_header(source)
    try:
        key = root.unwrap(header.wrapped_key, backup_key_identity(header.backup_id))
    except RootOfTrustError as exc:
        raise RootOfTrustError(
            "this backup was not made under this root of trust (or its header is damaged): "
            "restore it where the same master key or HSM key is configured"
        ) from exc
    return header, key


def restore_store(
    store: Store,
    root: RootOfTrust,
    source: BinaryIO,
    progress: Progress = _no_progress,
) -> BackupSummary:
    """Load a backup into ``store``, which must be empty; all or nothing.

    The audit events are appended again in order and must reproduce the backed-up hashes
    exactly, so the restored chain is the original one.
    """
    header, key = open_backup(root, source)
    body_at = source.tell()

    def unit(tx: StoreTx) -> BackupSummary:
        source.seek(body_at)  # write units may run again after a conflict
        if _holds_data(tx):
            raise ValidationError(
                "the target key store is not empty: restore into a fresh data directory"
            )
        # A fresh store's own audit key has keyed nothing yet: the backup's replaces it
        tx.delete(GLOBAL_TENANT, AUDIT_KEY_KIND, AUDIT_KEY_NAME)
        loader = _Loader(tx, progress, root)
        for entry in BackupReader(source, header, key):
            if isinstance(entry, StoreEntry):
                loader.record(entry)
            else:
                loader.audit(entry)
        loader.flush()
        return BackupSummary(header.backup_id, loader.records, loader.events)

    summary = store.write(unit)
    _audit(store, root, "RestoreKeystore", summary)
    return summary


def _holds_data(tx: StoreTx) -> bool:
    """Whether the store holds anything but a fresh audit key (a new store's own)."""
    if tx.read_audit(0, 1):
        return True
    for tenant in tx.tenants():
        if tenant != GLOBAL_TENANT or tx.kinds(tenant) != [AUDIT_KEY_KIND]:
            return True
    return False


class _Loader:
    """Batch records by (tenant, kind) and audit events into bulk inserts."""

    def __init__(self, tx: StoreTx, progress: Progress, root: RootOfTrust) -> None:
        self._tx = tx
        self._root = root
        self._chain: AuditChain | None = None
        self._progress = progress
        self._group: tuple[str, str] | None = None
        self._items: list[tuple[str, bytes]] = []
        self._events: list[AuditRecord] = []
        self.records = 0
        self.events = 0

    def record(self, entry: StoreEntry) -> None:
        """Queue one record."""
        group = (entry.tenant, entry.kind)
        if group != self._group or len(self._items) >= BATCH:
            self._flush_records()
            self._group = group
        self._items.append((entry.name, entry.value))

    def audit(self, event: AuditRecord) -> None:
        """Queue one audit event."""
        self._flush_records()
        self._events.append(event)
        if len(self._events) >= BATCH:
            self._flush_events()

    def flush(self) -> None:
        """Write whatever is queued."""
        self._flush_records()
        self._flush_events()

    def _flush_records(self) -> None:
        if not self._items or self._group is None:
            return
        tenant, kind = self._group
        written = self._tx.insert_many(tenant, kind, self._items)
        if written != len(self._items):
            raise StoreError("the backup holds one record twice; nothing was restored")
        self.records += written
        self._progress("records", written)
        self._items = []

    def _flush_events(self) -> None:
        if not self._events:
            return
        if self._chain is None:  # the records (with the backup's audit key) come first
            self._chain = load_audit_chain(self._tx, self._root) or UNKEYED
        appended = self._tx.append_audit([e.body for e in self._events], self._chain)
        for want, got in zip(self._events, appended, strict=True):
            if (want.seq, want.prev_hash, want.hash) != (got.seq, got.prev_hash, got.hash):
                raise StoreError(
                    f"audit event {want.seq} does not reproduce its hash; nothing was restored"
                )
        self.events += len(appended)
        self._progress("audit", len(appended))
        self._events = []
