"""A key record as AWS KMS shows it: the ``KeyMetadata`` structure (pure)."""

from __future__ import annotations

from typing import Any

from strongroom.kms.keyspec import ALGORITHMS_MEMBER, algorithms
from strongroom.kms.messages.shared import KeyMetadata, MultiRegionConfiguration, MultiRegionKey
from strongroom.kms.records import KeyRecord
from strongroom.kms.wire_codec import field_name


def multi_region_configuration(
    key: KeyRecord, related: list[KeyRecord]
) -> MultiRegionConfiguration:
    """``MultiRegionConfiguration``: the key's type, its primary key and every replica."""
    primary = key.primary_region or key.region
    replicas = tuple(
        MultiRegionKey(arn=other.arn, region=other.region)
        for other in related
        if other.region != primary
    )
    return MultiRegionConfiguration(
        multi_region_key_type="REPLICA" if key.is_replica else "PRIMARY",
        primary_key=MultiRegionKey(
            arn=f"arn:aws:kms:{primary}:{key.account_id}:key/{key.key_id}", region=primary
        ),
        replica_keys=replicas,
    )


def key_metadata(
    key: KeyRecord,
    current_material_id: str | None = None,
    related: list[KeyRecord] | None = None,
) -> KeyMetadata:
    """The ``KeyMetadata`` of ``key``, as DescribeKey and CreateKey answer it.

    ``current_material_id`` is its ``CurrentKeyMaterialId``, given for symmetric encryption
    keys that have material; ``related`` are the keys of a multi-Region key (primary and
    replicas, this one included).
    """
    algorithm_lists: dict[str, Any] = {}
    member = ALGORITHMS_MEMBER.get(key.key_usage)
    if member is not None:
        algorithm_lists[field_name(member)] = tuple(algorithms(key.key_spec, key.key_usage))
    # a primary waiting for its replicas has a window but no date yet: its waiting
    # period starts when the last replica is deleted
    waiting = key.deletion_date is not None or key.key_state == "PendingReplicaDeletion"
    return KeyMetadata(
        aws_account_id=key.account_id,
        key_id=key.key_id,
        arn=key.arn,
        creation_date=key.creation_date,
        enabled=key.key_state == "Enabled",
        description=key.description,
        key_usage=key.key_usage,
        key_state=key.key_state,
        origin=key.origin,
        key_manager="CUSTOMER",
        customer_master_key_spec=key.key_spec,
        key_spec=key.key_spec,
        multi_region=key.multi_region,
        multi_region_configuration=(
            multi_region_configuration(key, related or [key]) if key.multi_region else None
        ),
        deletion_date=key.deletion_date,
        pending_deletion_window_in_days=key.pending_window_days if waiting else None,
        valid_to=key.valid_to,
        expiration_model=key.expiration_model,
        current_key_material_id=current_material_id,
        **algorithm_lists,
    )
