"""Multi-Region keys: what related keys share, and how a change reaches all of them.

A multi-Region key is a set of related KMS keys with one ``mrk-`` key id, one per region:
one primary and any number of replicas. As in AWS KMS they share the key id, the key
material (every version: one set of ``keyver`` rows, wrapped once under the tenant KEK and
bound to the key id), the key spec, key usage, origin and the automatic rotation
settings; everything else (description, key policy, grants, aliases, tags, key state) is
each key's own. Strongroom keeps the related keys in one store, so a change of a shared
property is written to every related key row in the same transaction: there is no
synchronisation lag, unlike AWS. Imported material (origin ``EXTERNAL``) is not shared:
each related key imports the same material into version rows of its own
(:mod:`strongroom.kms.related_imports`).
"""

from __future__ import annotations

from strongroom.errors import UnsupportedOperationError
from strongroom.kms.records import KeyRecord
from strongroom.ports import StoreTx

SHARED_FIELDS = (
    "current_version",
    "rotation_enabled",
    "rotation_period_days",
    "next_rotation_date",
    "primary_region",
)
"""The :class:`KeyRecord` fields every related multi-Region key has the same value of."""

PRIMARY = "PRIMARY"
REPLICA = "REPLICA"


def related_rows(tx: StoreTx, key: KeyRecord) -> list[KeyRecord]:
    """Every key row of ``key``'s multi-Region key (itself included); ``[key]`` otherwise."""
    if not key.multi_region:
        return [key]
    rows = tx.scan(key.account_id, "key", prefix=key.key_id + "@")
    return [KeyRecord.from_bytes(raw) for _, raw in rows]


def save_key(tx: StoreTx, key: KeyRecord, before: KeyRecord | None = None) -> None:
    """Write ``key``'s row; for a multi-Region key, copy its shared fields to its relatives.

    With ``before`` (the row as read under lock), relatives are only written when a shared
    field changed, so a change of a key's own properties locks no other row.
    """
    tx.put(key.account_id, "key", key.row_name, key.to_bytes())
    if not key.multi_region:
        return
    if before is not None and all(
        getattr(before, name) == getattr(key, name) for name in SHARED_FIELDS
    ):
        return
    shared = {name: getattr(key, name) for name in SHARED_FIELDS}
    for other in related_rows(tx, key):
        if other.region == key.region:
            continue
        if any(getattr(other, name) != value for name, value in shared.items()):
            updated = other.replace(**shared)
            tx.put(other.account_id, "key", other.row_name, updated.to_bytes())


def refuse_replica(key: KeyRecord, what: str) -> None:
    """Refuse an operation only a primary (or a single-Region key) may be asked for."""
    if key.is_replica:
        raise UnsupportedOperationError(
            f"{key.arn} is a multi-Region replica key: {what} only on its primary key "
            f"in {key.primary_region}."
        )


def replicas_remaining(related: list[KeyRecord], primary: KeyRecord) -> list[KeyRecord]:
    """The replicas of ``primary`` among ``related`` (any state, not yet deleted)."""
    return [other for other in related if other.region != primary.region]
