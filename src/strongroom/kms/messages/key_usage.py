"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.key_usage`.

Operations: GetKeyLastUsage.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from typing import NamedTuple


class GetKeyLastUsageRequest(NamedTuple):
    """Request of ``GetKeyLastUsage``."""

    key_id: str


class GetKeyLastUsageResponse(NamedTuple):
    """Response of ``GetKeyLastUsage``."""

    key_creation_date: float | None = None
    key_id: str | None = None
    key_last_usage: KeyLastUsageData | None = None
    tracking_start_date: float | None = None


class KeyLastUsageData(NamedTuple):
    """Shape ``KeyLastUsageData`` of the model."""

    cloud_trail_event_id: str | None = None
    kms_request_id: str | None = None
    operation: str | None = None
    timestamp: float | None = None
