"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.keys`.

Operations: CancelKeyDeletion, CreateKey, DescribeKey, DisableKey, EnableKey, ListKeys,
ScheduleKeyDeletion, UpdateKeyDescription.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from strongroom.kms.messages.shared import KeyMetadata, Tag


class CancelKeyDeletionRequest(NamedTuple):
    """Request of ``CancelKeyDeletion``."""

    key_id: str


class CancelKeyDeletionResponse(NamedTuple):
    """Response of ``CancelKeyDeletion``."""

    key_id: str | None = None


class CreateKeyRequest(NamedTuple):
    """Request of ``CreateKey``."""

    bypass_policy_lockout_safety_check: bool | None = None
    custom_key_store_id: str | None = None
    customer_master_key_spec: str | None = None
    description: str | None = None
    key_spec: str | None = None
    key_usage: str | None = None
    multi_region: bool | None = None
    origin: str | None = None
    policy: str | None = None
    tags: Sequence[Tag] | None = None
    xks_key_id: str | None = None


class CreateKeyResponse(NamedTuple):
    """Response of ``CreateKey``."""

    key_metadata: KeyMetadata | None = None


class DescribeKeyRequest(NamedTuple):
    """Request of ``DescribeKey``."""

    key_id: str
    grant_tokens: Sequence[str] | None = None


class DescribeKeyResponse(NamedTuple):
    """Response of ``DescribeKey``."""

    key_metadata: KeyMetadata | None = None


class DisableKeyRequest(NamedTuple):
    """Request of ``DisableKey``."""

    key_id: str


class EnableKeyRequest(NamedTuple):
    """Request of ``EnableKey``."""

    key_id: str


class ListKeysRequest(NamedTuple):
    """Request of ``ListKeys``."""

    limit: int | None = None
    marker: str | None = None
    resource_owners: Sequence[str] | None = None


class ListKeysResponse(NamedTuple):
    """Response of ``ListKeys``."""

    keys: Sequence[KeyListEntry] | None = None
    next_marker: str | None = None
    truncated: bool | None = None


class ScheduleKeyDeletionRequest(NamedTuple):
    """Request of ``ScheduleKeyDeletion``."""

    key_id: str
    pending_window_in_days: int | None = None


class ScheduleKeyDeletionResponse(NamedTuple):
    """Response of ``ScheduleKeyDeletion``."""

    deletion_date: float | None = None
    key_id: str | None = None
    key_state: str | None = None
    pending_window_in_days: int | None = None


class UpdateKeyDescriptionRequest(NamedTuple):
    """Request of ``UpdateKeyDescription``."""

    description: str
    key_id: str


class KeyListEntry(NamedTuple):
    """Shape ``KeyListEntry`` of the model."""

    key_arn: str | None = None
    key_id: str | None = None
