"""Multi-Region keys: ReplicateKey and UpdatePrimaryRegion.

``CreateKey`` with ``MultiRegion`` makes a primary key (:mod:`.keys`); these operations
make its replicas in other regions and move the primary role between them. A region is
the SigV4 scope of a request, so every region lives in the one store of this server: a
replica is a new key row of the same ``mrk-`` id sharing the primary's material rows
(:mod:`strongroom.kms.multi_region`), ready as soon as the call returns. A replica of a
primary key with imported material (origin ``EXTERNAL``) has no material: as in AWS KMS it
is ``PendingImport`` until the primary's material is imported into it
(:mod:`.imports`).
"""

from __future__ import annotations

from strongroom.errors import (
    AlreadyExistsError,
    NotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms.imported_materials import EXTERNAL
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.messages.multi_region import (
    ReplicateKeyRequest,
    ReplicateKeyResponse,
    UpdatePrimaryRegionRequest,
)
from strongroom.kms.messages.shared import Tag
from strongroom.kms.metadata import key_metadata
from strongroom.kms.multi_region import related_rows, save_key
from strongroom.kms.ops.keys import default_policy
from strongroom.kms.records import KeyRecord
from strongroom.kms.states import CREATING, ENABLED, PENDING_IMPORT, check_state
from strongroom.kms.tags import check_tags
from strongroom.ports import StoreTx


def _primary_here(k: Kernel, tx: StoreTx, ctx: OpContext, key_spec: str, action: str) -> KeyRecord:
    """Resolve ``key_spec`` in the caller's region to a multi-Region primary key."""
    key = k.resolve_key(tx, ctx, key_spec)
    k.authorize(tx, ctx, key, action)
    if not key.multi_region:
        raise UnsupportedOperationError(
            f"{key.arn} is not a multi-Region key: {action} applies to multi-Region "
            "primary keys only (CreateKey with MultiRegion true)."
        )
    if key.is_replica:
        raise UnsupportedOperationError(
            f"{key.arn} is a multi-Region replica key; {action} applies to its primary "
            f"key in {key.primary_region}."
        )
    return key


def replicate_key(k: Kernel, ctx: OpContext, req: ReplicateKeyRequest) -> ReplicateKeyResponse:
    """Create a replica of a multi-Region primary key in another region.

    The replica shares the primary's key id, material (every version), key spec, usage,
    origin and rotation settings; its description, policy and tags are its own. A replica
    of a key with imported material starts ``PendingImport``, without material. Needs
    ``kms:ReplicateKey`` on the primary; the replica's policy (the default one if none is
    given) must not lock the caller out unless ``BypassPolicyLockoutSafetyCheck``.
    """
    region = req.replica_region
    account = ctx.caller.tenant
    policy = req.policy
    tags = check_tags(req.tags or ())

    def unit(tx: StoreTx) -> KeyRecord:
        primary = _primary_here(k, tx, ctx, req.key_id, "ReplicateKey")
        check_state(primary.key_state, "crypto", primary.arn)
        replica_arn = f"arn:aws:kms:{region}:{account}:key/{primary.key_id}"
        if policy is not None:
            bypass = bool(req.bypass_policy_lockout_safety_check)
            k.authorizer.check_new_policy(ctx.caller, policy, replica_arn, bypass)
        replica = KeyRecord(
            key_id=primary.key_id,
            account_id=account,
            region=region,
            key_spec=primary.key_spec,
            key_usage=primary.key_usage,
            origin=primary.origin,
            key_state=PENDING_IMPORT if primary.origin == EXTERNAL else ENABLED,
            creation_date=k.clock.now(),
            description=req.description or "",
            current_version=primary.current_version,
            rotation_enabled=primary.rotation_enabled,
            rotation_period_days=primary.rotation_period_days,
            next_rotation_date=primary.next_rotation_date,
            tags=tags,
            policy=policy if policy is not None else default_policy(account),
            primary_region=primary.region,
        )
        if not tx.insert(account, "key", replica.row_name, replica.to_bytes()):
            raise AlreadyExistsError(f"{replica_arn} already exists")
        return replica

    replica = k.write(ctx, unit)
    related = k.read(lambda tx: related_rows(tx, replica))
    metadata = key_metadata(replica, _material_id(k, replica), related)
    # AWS answers while the replica is still being made; here it is ready at once
    # (DescribeKey shows Enabled, or PendingImport for imported material), but the answer
    # keeps AWS's shape for clients that wait.
    return ReplicateKeyResponse(
        replica_key_metadata=metadata._replace(key_state=CREATING, enabled=False),
        replica_policy=replica.policy,
        replica_tags=tuple(Tag(tag_key=key, tag_value=value) for key, value in tags.items()),
    )


def _material_id(k: Kernel, key: KeyRecord) -> str | None:
    if key.key_spec != "SYMMETRIC_DEFAULT" or key.current_version < 1:
        return None
    if key.key_state == PENDING_IMPORT:  # a replica with no imported material yet
        return None
    return k.materials.material_id_of(None, key, key.current_version)


def update_primary_region(k: Kernel, ctx: OpContext, req: UpdatePrimaryRegionRequest) -> None:
    """Make the replica in ``PrimaryRegion`` the primary key; the old primary a replica.

    Needs ``kms:UpdatePrimaryRegion`` on both keys, and both Enabled. AWS passes through a
    short ``Updating`` state; here the change is one transaction, done when this returns.
    """
    new_region = req.primary_region

    def unit(tx: StoreTx) -> None:
        primary = _primary_here(k, tx, ctx, req.key_id, "UpdatePrimaryRegion")
        if new_region == primary.region:
            raise ValidationError(
                f"{primary.arn} is already the primary key: PrimaryRegion must be the "
                "region of one of its replica keys."
            )
        replicas = {other.region: other for other in related_rows(tx, primary)}
        replica = replicas.get(new_region)
        if replica is None or k.is_past_deletion(replica):
            raise NotFoundError(
                f"Key 'arn:aws:kms:{new_region}:{primary.account_id}:key/{primary.key_id}' "
                "does not exist"
            )
        k.authorize(tx, ctx, replica, "UpdatePrimaryRegion")
        check_state(primary.key_state, "crypto", primary.arn)
        check_state(replica.key_state, "crypto", replica.arn)
        locked = tx.get_for_update(primary.account_id, "key", primary.row_name)
        if locked is None:
            raise NotFoundError(f"Key '{primary.arn}' does not exist")
        current = KeyRecord.from_bytes(locked)
        save_key(tx, current.replace(primary_region=new_region))

    k.write(ctx, unit)
