"""A key record as AWS KMS shows it: the ``KeyMetadata`` structure (pure)."""

from __future__ import annotations

from typing import Any

from strongroom.kms.keyspec import ALGORITHMS_MEMBER, algorithms
from strongroom.kms.records import KeyRecord


def multi_region_configuration(key: KeyRecord, related: list[KeyRecord]) -> dict[str, Any]:
    """``MultiRegionConfiguration``: the key's type, its primary key and every replica."""
    primary = key.primary_region or key.region
    replicas = [
        {"Arn": other.arn, "Region": other.region} for other in related if other.region != primary
    ]
    return {
        "MultiRegionKeyType": "REPLICA" if key.is_replica else "PRIMARY",
        "PrimaryKey": {
            "Arn": f"arn:aws:kms:{primary}:{key.account_id}:key/{key.key_id}",
            "Region": primary,
        },
        "ReplicaKeys": replicas,
    }


def key_metadata(
    key: KeyRecord,
    current_material_id: str | None = None,
    related: list[KeyRecord] | None = None,
) -> dict[str, Any]:
    """The ``KeyMetadata`` of ``key``, as DescribeKey and CreateKey answer it.

    ``current_material_id`` is its ``CurrentKeyMaterialId``, given for symmetric encryption
    keys that have material; ``related`` are the keys of a multi-Region key (primary and
    replicas, this one included).
    """
    meta: dict[str, Any] = {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.creation_date,
        "Enabled": key.key_state == "Enabled",
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": key.key_state,
        "Origin": key.origin,
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        "MultiRegion": key.multi_region,
    }
    if key.multi_region:
        meta["MultiRegionConfiguration"] = multi_region_configuration(key, related or [key])
    member = ALGORITHMS_MEMBER.get(key.key_usage)
    if member is not None:
        meta[member] = list(algorithms(key.key_spec, key.key_usage))
    if key.deletion_date is not None:
        meta["DeletionDate"] = key.deletion_date
    if key.deletion_date is not None or key.key_state == "PendingReplicaDeletion":
        # a primary waiting for its replicas has a window but no date yet: its waiting
        # period starts when the last replica is deleted
        meta["PendingDeletionWindowInDays"] = key.pending_window_days
    if key.valid_to is not None:
        meta["ValidTo"] = key.valid_to
    if key.expiration_model is not None:
        meta["ExpirationModel"] = key.expiration_model
    if current_material_id is not None:
        meta["CurrentKeyMaterialId"] = current_material_id
    return meta
