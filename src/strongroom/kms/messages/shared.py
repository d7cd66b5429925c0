"""Structures of the AWS KMS model used by several groups.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class KeyMetadata(NamedTuple):
    """Shape ``KeyMetadata`` of the model."""

    key_id: str
    aws_account_id: str | None = None
    arn: str | None = None
    cloud_hsm_cluster_id: str | None = None
    creation_date: float | None = None
    current_key_material_id: str | None = None
    custom_key_store_id: str | None = None
    customer_master_key_spec: str | None = None
    deletion_date: float | None = None
    description: str | None = None
    enabled: bool | None = None
    encapsulation_algorithms: Sequence[str] | None = None
    encryption_algorithms: Sequence[str] | None = None
    expiration_model: str | None = None
    key_agreement_algorithms: Sequence[str] | None = None
    key_manager: str | None = None
    key_spec: str | None = None
    key_state: str | None = None
    key_usage: str | None = None
    mac_algorithms: Sequence[str] | None = None
    multi_region: bool | None = None
    multi_region_configuration: MultiRegionConfiguration | None = None
    origin: str | None = None
    pending_deletion_window_in_days: int | None = None
    signing_algorithms: Sequence[str] | None = None
    valid_to: float | None = None
    xks_key_configuration: XksKeyConfigurationType | None = None


class MultiRegionConfiguration(NamedTuple):
    """Shape ``MultiRegionConfiguration`` of the model."""

    multi_region_key_type: str | None = None
    primary_key: MultiRegionKey | None = None
    replica_keys: Sequence[MultiRegionKey] | None = None


class MultiRegionKey(NamedTuple):
    """Shape ``MultiRegionKey`` of the model."""

    arn: str | None = None
    region: str | None = None


class RecipientInfo(NamedTuple):
    """Shape ``RecipientInfo`` of the model."""

    attestation_document: bytes | None = None
    key_encryption_algorithm: str | None = None


class Tag(NamedTuple):
    """Shape ``Tag`` of the model."""

    tag_key: str
    tag_value: str


class XksKeyConfigurationType(NamedTuple):
    """Shape ``XksKeyConfigurationType`` of the model."""

    id: str | None = None
