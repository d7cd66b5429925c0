"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.rotation`.

Operations: DisableKeyRotation, EnableKeyRotation, GetKeyRotationStatus, ListKeyRotations,
RotateKeyOnDemand.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class DisableKeyRotationRequest(NamedTuple):
    """Request of ``DisableKeyRotation``."""

    key_id: str


class EnableKeyRotationRequest(NamedTuple):
    """Request of ``EnableKeyRotation``."""

    key_id: str
    rotation_period_in_days: int | None = None


class GetKeyRotationStatusRequest(NamedTuple):
    """Request of ``GetKeyRotationStatus``."""

    key_id: str


class GetKeyRotationStatusResponse(NamedTuple):
    """Response of ``GetKeyRotationStatus``."""

    key_id: str | None = None
    key_rotation_enabled: bool | None = None
    next_rotation_date: float | None = None
    on_demand_rotation_start_date: float | None = None
    rotation_period_in_days: int | None = None


class ListKeyRotationsRequest(NamedTuple):
    """Request of ``ListKeyRotations``."""

    key_id: str
    include_key_material: str | None = None
    limit: int | None = None
    marker: str | None = None


class ListKeyRotationsResponse(NamedTuple):
    """Response of ``ListKeyRotations``."""

    next_marker: str | None = None
    rotations: Sequence[RotationsListEntry] | None = None
    truncated: bool | None = None


class RotateKeyOnDemandRequest(NamedTuple):
    """Request of ``RotateKeyOnDemand``."""

    key_id: str


class RotateKeyOnDemandResponse(NamedTuple):
    """Response of ``RotateKeyOnDemand``."""

    key_id: str | None = None


class RotationsListEntry(NamedTuple):
    """Shape ``RotationsListEntry`` of the model."""

    expiration_model: str | None = None
    import_state: str | None = None
    key_id: str | None = None
    key_material_description: str | None = None
    key_material_id: str | None = None
    key_material_state: str | None = None
    rotation_date: float | None = None
    rotation_type: str | None = None
    valid_to: float | None = None
