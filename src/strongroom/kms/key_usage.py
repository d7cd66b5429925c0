"""The last successful cryptographic use of each key, for ``GetKeyLastUsage``.

Writing a row on every Encrypt or Decrypt would put a store commit on the hot path, so a
use is only noted in memory (:meth:`KeyUseTracker.note`, a dictionary store) and the
newest use of each key is written with the next audit batch, in the same transaction
(:meth:`~strongroom.kms.audit_log.AuditLog.flush`): a use becomes visible to other
processes when its audit event does, within a flush interval. Each row keeps only the
newest use: a slower process flushing an older use does not overwrite a newer one.

Rows: ``(tenant, "keyuse", key row name)`` holds a :class:`KeyUseRecord`; ``(tenant,
"keyusestart", "self")`` the time the tenant's tracking began (its creation, or the first
use recorded for a tenant older than tracking), which ``GetKeyLastUsage`` returns as
``TrackingStartDate``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from strongroom.kms.records import JsonRecord, key_row_name
from strongroom.ports import StoreTx

TRACKED_OPERATIONS = frozenset(
    {
        "Decapsulate",
        "Decrypt",
        "DeriveSharedSecret",
        "Encapsulate",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "ReEncrypt",
        "Sign",
        "Verify",
        "VerifyMac",
    }
)
"""The operations ``GetKeyLastUsage`` reports (AWS KMS's list)."""
USE_KIND = "keyuse"
START_KIND = "keyusestart"


@dataclass(frozen=True, slots=True)
class KeyUseRecord(JsonRecord):
    """One successful cryptographic use of a key: which operation, when, which request."""

    operation: str
    timestamp: float
    request_id: str


def key_of_arn(key_arn: str) -> tuple[str, str]:
    """``(account id, key row name)`` of a key ARN ``arn:aws:kms:REGION:ACCOUNT:key/ID``.

    The row name is the key id, and names the region too for a multi-Region key.
    """
    parts = key_arn.split(":", 5)
    return parts[4], key_row_name(parts[5].removeprefix("key/"), parts[3])


_Use = tuple[str, float, str]  # (operation, timestamp, request id): cheap on the hot path


class KeyUseTracker:
    """The newest use of each key since the last flush, held in memory."""

    def __init__(self) -> None:
        self._latest: dict[str, _Use] = {}
        # taken by a flush whose transaction has not committed: still shown by latest()
        self._flushing: dict[str, _Use] = {}
        self._lock = threading.Lock()

    def note(self, key_arn: str, operation: str, timestamp: float, request_id: str) -> None:
        """Remember a successful ``operation`` on ``key_arn`` (a tracked one)."""
        with self._lock:
            self._latest[key_arn] = (operation, timestamp, request_id)

    def latest(self, key_arn: str) -> KeyUseRecord | None:
        """The newest use of ``key_arn`` not yet committed to the store, if any.

        Read it *before* the store: a use is then either here or already committed.
        """
        with self._lock:
            use = self._latest.get(key_arn) or self._flushing.get(key_arn)
        return None if use is None else KeyUseRecord(*use)

    def take(self) -> dict[str, KeyUseRecord]:
        """Everything noted since the last take, for a flush to write.

        The uses stay visible to :meth:`latest` until :meth:`written` or :meth:`give_back`.
        """
        with self._lock:
            taken, self._latest = self._latest, {}
            self._flushing = taken
        return {key_arn: KeyUseRecord(*use) for key_arn, use in taken.items()}

    def written(self) -> None:
        """The flush that took the uses has committed them."""
        with self._lock:
            self._flushing = {}

    def give_back(self, taken: dict[str, KeyUseRecord]) -> None:
        """Return uses that could not be written (newer ones noted meanwhile win)."""
        with self._lock:
            self._flushing = {}
            for key_arn, use in taken.items():
                held = self._latest.get(key_arn)
                if held is None or held[1] < use.timestamp:
                    self._latest[key_arn] = (use.operation, use.timestamp, use.request_id)


def save_uses(tx: StoreTx, uses: dict[str, KeyUseRecord]) -> None:
    """Write each key's use unless the store holds a newer one (or the key is gone).

    Three statements per tenant, whatever the number of keys: the keys, their stored uses,
    then the newer uses in one write.
    """
    by_account: dict[str, dict[str, KeyUseRecord]] = {}
    for key_arn, use in uses.items():
        account, key_id = key_of_arn(key_arn)
        by_account.setdefault(account, {})[key_id] = use
    for account, group in by_account.items():
        names = list(group)
        alive = tx.get_many(account, "key", names)  # shredded keys keep no use
        stored = tx.get_many(account, USE_KIND, names)
        newer = [
            (key_id, use.to_bytes())
            for key_id, use in group.items()
            if key_id in alive
            and (
                key_id not in stored
                or KeyUseRecord.from_bytes(stored[key_id]).timestamp < use.timestamp
            )
        ]
        tx.put_many(account, USE_KIND, newer)
        mark_tracking_start(tx, account, min(use.timestamp for use in group.values()))


def mark_tracking_start(tx: StoreTx, account: str, start: float) -> None:
    """Record that ``account``'s uses are tracked from ``start`` (kept if already set)."""
    tx.insert(account, START_KIND, "self", repr(start).encode("ascii"))


def stored_use(tx: StoreTx, account: str, key_id: str) -> KeyUseRecord | None:
    """The newest use of a key written so far."""
    raw = tx.get(account, USE_KIND, key_id)
    return None if raw is None else KeyUseRecord.from_bytes(raw)


def tracking_start(tx: StoreTx, account: str) -> float | None:
    """When tracking began for ``account`` (``None``: nothing recorded yet)."""
    raw = tx.get(account, START_KIND, "self")
    return None if raw is None else float(raw.decode("ascii"))
