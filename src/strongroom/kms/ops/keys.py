"""Key lifecycle: CreateKey, DescribeKey, ListKeys, enable/disable, deletion, description.

Rotation, tags and policies live in :mod:`.rotation`, :mod:`.tags` and :mod:`.policy`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from strongroom.errors import (
    InvalidMarkerError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms.imported_materials import current_view
from strongroom.kms.kernel import DAY, Kernel, OpContext
from strongroom.kms.key_usage import USE_KIND
from strongroom.kms.keyspec import KEY_SPECS, NOT_OFFERED_SPECS, SYMMETRIC_DEFAULT
from strongroom.kms.material import new_material
from strongroom.kms.messages import keys as msg
from strongroom.kms.multi_region import related_rows, save_key
from strongroom.kms.records import (
    EXTERNAL,
    KeyRecord,
    KeyVersionRecord,
    key_version_prefix,
    version_name,
)
from strongroom.kms.states import (
    DISABLED,
    ENABLED,
    PENDING_DELETION,
    PENDING_IMPORT,
    PENDING_REPLICA_DELETION,
    check_state,
)
from strongroom.kms.tags import check_tags
from strongroom.ports import StoreTx

MIN_PENDING_WINDOW_DAYS = 7
MAX_PENDING_WINDOW_DAYS = 30
DEFAULT_PENDING_WINDOW_DAYS = 30


def default_policy(account_id: str) -> str:
    """The default key policy: every principal of the tenant has full access."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=2,
    )


def page(items: list[Any], limit: int | None, default: int = 100) -> tuple[list[Any], bool]:
    """Cut ``items`` to ``limit`` and say whether more remain."""
    size = default if limit is None else limit
    return items[:size], len(items) > size


def _key_spec(k: Kernel, req: msg.CreateKeyRequest) -> tuple[str, str]:
    spec = req.key_spec
    legacy = req.customer_master_key_spec
    if spec is not None and legacy is not None:
        raise ValidationError(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request."
        )
    spec = spec or legacy or SYMMETRIC_DEFAULT
    info = KEY_SPECS.get(spec)
    if info is None:
        raise UnsupportedOperationError(
            NOT_OFFERED_SPECS.get(spec, f"KeySpec {spec} is not supported.")
        )
    usage = req.key_usage or info.default_usage
    if usage is None or usage not in info.usages:
        raise ValidationError(
            f"KeyUsage {req.key_usage or 'ENCRYPT_DECRYPT'} is not compatible with KeySpec {spec}"
        )
    return spec, usage


def create_key(k: Kernel, ctx: OpContext, req: msg.CreateKeyRequest) -> msg.CreateKeyResponse:
    """Create a KMS key of any supported spec and usage.

    A given policy is validated first and must not lock the caller out (unless
    ``BypassPolicyLockoutSafetyCheck``), as AWS does.
    """
    account = ctx.caller.tenant
    policy = req.policy
    if policy is not None:
        bypass = bool(req.bypass_policy_lockout_safety_check)
        k.authorizer.check_new_policy(ctx.caller, policy, None, bypass)
    else:
        policy = default_policy(account)
    spec, usage = _key_spec(k, req)
    origin = req.origin or "AWS_KMS"
    if origin not in ("AWS_KMS", EXTERNAL):
        raise UnsupportedOperationError(f"Origin {origin} is not supported.")
    if req.custom_key_store_id or req.xks_key_id:
        raise UnsupportedOperationError("Custom key stores are not supported.")
    multi_region = bool(req.multi_region)
    tags = check_tags(req.tags or ())
    now = k.clock.now()
    key = KeyRecord(
        key_id=k.new_key_id(multi_region),
        account_id=account,
        region=ctx.caller.region,
        primary_region=ctx.caller.region if multi_region else None,
        key_spec=spec,
        key_usage=usage,
        origin=origin,
        key_state=PENDING_IMPORT if origin == EXTERNAL else ENABLED,
        creation_date=now,
        description=req.description or "",
        current_version=0 if origin == EXTERNAL else 1,
        tags=tags,
        policy=policy,
    )
    ctx.key_arn = key.arn
    version = None
    if origin == "AWS_KMS":
        material, public = new_material(spec)
        version = KeyVersionRecord(
            key_id=key.key_id,
            version=1,
            created_at=now,
            wrapped_material=k.materials.wrap_material(account, key.key_id, 1, material),
            public_key=public,
        )

    def unit(tx: StoreTx) -> None:
        tx.insert(account, "key", key.row_name, key.to_bytes())
        if version is not None:
            tx.insert(account, "keyver", version_name(key.key_id, 1), version.to_bytes())

    k.write(ctx, unit)
    return msg.CreateKeyResponse(key_metadata=k.describe(key))


def describe_key(k: Kernel, ctx: OpContext, req: msg.DescribeKeyRequest) -> msg.DescribeKeyResponse:
    """Return a key's metadata."""

    def unit(tx: StoreTx) -> msg.DescribeKeyResponse:
        key = k.resolve_key(tx, ctx, req.key_id)
        k.authorize(tx, ctx, key, "DescribeKey", None, req.grant_tokens)
        return msg.DescribeKeyResponse(key_metadata=k.describe(key, tx))

    return k.read(unit)


def list_keys(k: Kernel, ctx: OpContext, req: msg.ListKeysRequest) -> msg.ListKeysResponse:
    """List the caller's keys in its region, paginated by key id."""
    marker = req.marker
    if marker is not None and not marker.startswith("k:"):
        raise InvalidMarkerError("Marker is invalid.")

    owners = req.resource_owners

    def unit(tx: StoreTx) -> list[KeyRecord]:
        if owners is not None and "SELF" not in owners:
            return []  # no keys are shared from other accounts (no AWS RAM here)
        rows = tx.scan(ctx.caller.tenant, "key", after=None if marker is None else marker[2:])
        keys = [KeyRecord.from_bytes(raw) for _, raw in rows]
        here = ctx.caller.region
        return [key for key in keys if key.region == here and not k.is_past_deletion(key)]

    keys, truncated = page(k.read(unit), req.limit)
    return msg.ListKeysResponse(
        keys=tuple(msg.KeyListEntry(key_arn=key.arn, key_id=key.key_id) for key in keys),
        next_marker="k:" + keys[-1].row_name if truncated else None,
        truncated=truncated,
    )


def update_key(
    k: Kernel,
    ctx: OpContext,
    key_id: str,
    group: str,
    action: str,
    change: Callable[[KeyRecord], KeyRecord] | None = None,
    *,
    change_in_tx: Callable[[StoreTx, KeyRecord], KeyRecord] | None = None,
    grant_tokens: Sequence[str] | None = None,
) -> KeyRecord:
    """Lock the key ``key_id`` names, check state and permission, apply ``change(key)``, save.

    ``change_in_tx(tx, key)`` instead of ``change`` when the change reads other rows.
    """

    def unit(tx: StoreTx) -> KeyRecord:
        key = k.resolve_key(tx, ctx, key_id)
        k.authorize(tx, ctx, key, action, None, grant_tokens)
        raw = tx.get_for_update(key.account_id, "key", key.row_name)
        key = current_view(KeyRecord.from_bytes(raw), k.clock.now()) if raw is not None else key
        check_state(key.key_state, group, key.arn)
        if change_in_tx is not None:
            updated = change_in_tx(tx, key)
        else:
            assert change is not None
            updated = change(key)
        save_key(tx, updated, key)
        return updated

    updated = k.write(ctx, unit)
    k.forget_key(updated.account_id, updated.key_id)
    return updated


def enable_key(k: Kernel, ctx: OpContext, req: msg.EnableKeyRequest) -> None:
    """Set a key's state to Enabled."""
    update_key(
        k, ctx, req.key_id, "enable", "EnableKey", lambda key: key.replace(key_state=ENABLED)
    )


def disable_key(k: Kernel, ctx: OpContext, req: msg.DisableKeyRequest) -> None:
    """Set a key's state to Disabled; its cached material is dropped."""
    update_key(
        k, ctx, req.key_id, "enable", "DisableKey", lambda key: key.replace(key_state=DISABLED)
    )


def update_key_description(k: Kernel, ctx: OpContext, req: msg.UpdateKeyDescriptionRequest) -> None:
    """Replace a key's description."""
    update_key(
        k,
        ctx,
        req.key_id,
        "manage",
        "UpdateKeyDescription",
        lambda key: key.replace(description=req.description),
    )


def schedule_key_deletion(
    k: Kernel, ctx: OpContext, req: msg.ScheduleKeyDeletionRequest
) -> msg.ScheduleKeyDeletionResponse:
    """Schedule a key's deletion after a 7-30 day waiting period (default 30)."""
    days = req.pending_window_in_days
    days = DEFAULT_PENDING_WINDOW_DAYS if days is None else days
    if not MIN_PENDING_WINDOW_DAYS <= days <= MAX_PENDING_WINDOW_DAYS:
        raise ValidationError(
            f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed "
            f"to satisfy constraint: Member must have value between "
            f"{MIN_PENDING_WINDOW_DAYS} and {MAX_PENDING_WINDOW_DAYS}"
        )
    when = k.clock.now() + days * DAY

    def change(tx: StoreTx, key: KeyRecord) -> KeyRecord:
        if key.multi_region and not key.is_replica and len(related_rows(tx, key)) > 1:
            # AWS: a primary waits for its replicas; its window starts after the last
            return key.replace(
                key_state=PENDING_REPLICA_DELETION,
                deletion_date=None,
                pending_window_days=days,
                state_before_deletion=key.key_state,
            )
        return key.replace(
            key_state=PENDING_DELETION,
            deletion_date=when,
            pending_window_days=days,
            state_before_deletion=key.key_state,
        )

    key = update_key(k, ctx, req.key_id, "schedule", "ScheduleKeyDeletion", change_in_tx=change)
    return msg.ScheduleKeyDeletionResponse(
        deletion_date=key.deletion_date,
        key_id=key.arn,
        key_state=key.key_state,
        pending_window_in_days=days,
    )


def cancel_key_deletion(
    k: Kernel, ctx: OpContext, req: msg.CancelKeyDeletionRequest
) -> msg.CancelKeyDeletionResponse:
    """Cancel a scheduled deletion; the key comes back Disabled, as in AWS KMS."""
    key = update_key(
        k,
        ctx,
        req.key_id,
        "cancel",
        "CancelKeyDeletion",
        lambda key: key.replace(
            key_state=PENDING_IMPORT if key.state_before_deletion == PENDING_IMPORT else DISABLED,
            deletion_date=None,
            pending_window_days=None,
            state_before_deletion=None,
        ),
    )
    return msg.CancelKeyDeletionResponse(key_id=key.arn)


def shred_key(k: Kernel, tx: StoreTx, key: KeyRecord) -> None:
    """Delete a key and everything under it: versions, aliases, grants, user keys.

    A key of a multi-Region key takes its own row, grants and aliases; the shared
    material and user keys go with the last of the related keys. A primary waiting in
    ``PendingReplicaDeletion`` for this last replica starts its own waiting period.
    """
    account = key.account_id
    tx.delete(account, "key", key.row_name)
    tx.delete_prefix(account, "grant", key.row_name + "/")
    tx.delete(account, USE_KIND, key.row_name)
    if key.multi_region and key.origin == EXTERNAL:  # it holds its own imported material
        tx.delete_prefix(account, "keyver", key_version_prefix(key))
    for name, raw in tx.scan(account, "alias"):
        alias = json.loads(raw)
        if alias.get("key_id") == key.key_id and alias.get("region") == key.region:
            tx.delete(account, "alias", name)
    remaining = related_rows(tx, key) if key.multi_region else []
    if not remaining:
        tx.delete_prefix(account, "keyver", key.key_id + "/")
        tx.delete_prefix(account, "userkey", key.key_id + "/")
    elif len(remaining) == 1 and remaining[0].key_state == PENDING_REPLICA_DELETION:
        primary = remaining[0]
        days = primary.pending_window_days or DEFAULT_PENDING_WINDOW_DAYS
        waiting = primary.replace(
            key_state=PENDING_DELETION, deletion_date=k.clock.now() + days * DAY
        )
        tx.put(account, "key", primary.row_name, waiting.to_bytes())
    k.forget_key(account, key.key_id)


def delete_due_keys(k: Kernel) -> list[str]:
    """Shred every key whose deletion date has passed; return their ARNs (audited)."""

    def unit(tx: StoreTx) -> list[str]:
        done = []
        for tenant in tx.tenants():
            for _, raw in tx.scan(tenant, "key"):
                key = KeyRecord.from_bytes(raw)
                if k.is_past_deletion(key):
                    shred_key(k, tx, key)
                    done.append(key.arn)
        return done

    arns = k.store.write(unit)
    for arn in arns:
        k.audit.record(
            {
                "operation": "DeleteKey",
                "keyArn": arn,
                "result": "Success",
                "account": arn.split(":")[4],
            }
        )
    return arns
