"""GetKeyLastUsage: the last successful cryptographic operation with a key.

Uses are tracked per key (:mod:`strongroom.kms.key_usage`): the newest one written with the
audit batches, and this process's newer ones still in memory. ``KeyLastUsage`` is absent
when no use is recorded since ``TrackingStartDate``. ``CloudTrailEventId`` is not given:
Strongroom's audit events are found by ``KmsRequestId`` (``strongroom admin audit show``).
"""

from __future__ import annotations

from strongroom.errors import NotFoundError
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.key_usage import stored_use, tracking_start
from strongroom.kms.messages.key_usage import (
    GetKeyLastUsageRequest,
    GetKeyLastUsageResponse,
    KeyLastUsageData,
)
from strongroom.kms.records import KeyRecord
from strongroom.ports import StoreTx


def get_key_last_usage(
    k: Kernel, ctx: OpContext, req: GetKeyLastUsageRequest
) -> GetKeyLastUsageResponse:
    """When, by which operation and request a key was last used successfully."""
    key_spec = req.key_id
    if key_spec.startswith("alias/") or ":alias/" in key_spec:
        raise NotFoundError("GetKeyLastUsage takes a key id or key ARN, not an alias.")

    def resolve(tx: StoreTx) -> KeyRecord:
        key = k.resolve_key(tx, ctx, key_spec)
        k.authorize(tx, ctx, key, "GetKeyLastUsage")
        return key

    key = k.read(resolve)
    # this process's newest use is read before the store's: a use that a flush
    # commits meanwhile is then seen in one or the other
    pending = k.audit.key_uses.latest(key.arn)
    use, start = k.read(
        lambda tx: (
            stored_use(tx, key.account_id, key.row_name),
            tracking_start(tx, key.account_id),
        )
    )
    if pending is not None and (use is None or use.timestamp < pending.timestamp):
        use = pending
    if start is None or (use is not None and use.timestamp < start):
        start = use.timestamp if use is not None else k.clock.now()
    return GetKeyLastUsageResponse(
        key_creation_date=key.creation_date,
        key_id=key.arn,
        key_last_usage=None
        if use is None
        else KeyLastUsageData(
            kms_request_id=use.request_id, operation=use.operation, timestamp=use.timestamp
        ),
        tracking_start_date=start,
    )
