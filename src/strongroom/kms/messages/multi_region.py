"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.multi_region`.

Operations: ReplicateKey, UpdatePrimaryRegion.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from strongroom.kms.messages.shared import KeyMetadata, Tag


class ReplicateKeyRequest(NamedTuple):
    """Request of ``ReplicateKey``."""

    key_id: str
    replica_region: str
    bypass_policy_lockout_safety_check: bool | None = None
    description: str | None = None
    policy: str | None = None
    tags: Sequence[Tag] | None = None


class ReplicateKeyResponse(NamedTuple):
    """Response of ``ReplicateKey``."""

    replica_key_metadata: KeyMetadata | None = None
    replica_policy: str | None = None
    replica_tags: Sequence[Tag] | None = None


class UpdatePrimaryRegionRequest(NamedTuple):
    """Request of ``UpdatePrimaryRegion``."""

    key_id: str
    primary_region: str
