"""Key rotation: automatic (maintenance) and on demand, the rotation status and history."""

from __future__ import annotations

from strongroom.errors import (
    InvalidMarkerError,
    InvalidStateError,
    LimitExceededError,
    NotFoundError,
    UnsupportedOperationError,
)
from strongroom.kms.imported_materials import (
    EXTERNAL,
    KEY_MATERIAL_DOES_NOT_EXPIRE,
    KeyMaterials,
    import_state,
    is_imported,
    material_state,
    settle,
)
from strongroom.kms.kernel import DAY, Kernel, OpContext
from strongroom.kms.keyspec import SYMMETRIC_DEFAULT
from strongroom.kms.material import new_material
from strongroom.kms.messages.rotation import (
    DisableKeyRotationRequest,
    EnableKeyRotationRequest,
    GetKeyRotationStatusRequest,
    GetKeyRotationStatusResponse,
    ListKeyRotationsRequest,
    ListKeyRotationsResponse,
    RotateKeyOnDemandRequest,
    RotateKeyOnDemandResponse,
    RotationsListEntry,
)
from strongroom.kms.multi_region import refuse_replica, save_key
from strongroom.kms.ops.keys import page, update_key
from strongroom.kms.records import KeyRecord, KeyVersionRecord, key_version_name, key_version_prefix
from strongroom.kms.states import check_state
from strongroom.ports import StoreTx

DEFAULT_ROTATION_DAYS = 365
ON_DEMAND_ROTATION_LIMIT = 25
"""On-demand rotations a key may have (AWS KMS's fixed quota); automatic ones are not counted."""


def _check_rotatable(key: KeyRecord, *, imported: bool = False) -> None:
    """Refuse keys that cannot rotate (``imported``: EXTERNAL keys rotate on demand)."""
    origins = ("AWS_KMS", EXTERNAL) if imported else ("AWS_KMS",)
    if key.key_spec != SYMMETRIC_DEFAULT or key.origin not in origins:
        raise UnsupportedOperationError(
            f"{key.arn} origin is {key.origin} and key spec is {key.key_spec}; only "
            f"symmetric keys with origin {' or '.join(origins)} can be rotated"
            + (" (EXTERNAL: on demand, to imported new material)." if imported else ".")
        )


def rotate_in_tx(k: Kernel, tx: StoreTx, key: KeyRecord, rotation_type: str) -> KeyRecord:
    """Add a new material version to a locked key and make it current."""
    version = key.current_version + 1
    material, public = new_material(key.key_spec)
    record = KeyVersionRecord(
        key_id=key.key_id,
        version=version,
        created_at=k.clock.now(),
        wrapped_material=k.materials.wrap_material(key.account_id, key.key_id, version, material),
        rotation_type=rotation_type,
        public_key=public,
    )
    if not tx.insert(key.account_id, "keyver", key_version_name(key, version), record.to_bytes()):
        raise NotFoundError("concurrent rotation; retry")
    updated = key.replace(current_version=version)
    if rotation_type == "AUTOMATIC" and key.rotation_period_days:
        updated = updated.replace(next_rotation_date=k.clock.now() + key.rotation_period_days * DAY)
    save_key(tx, updated)  # the replicas of a multi-Region key share its versions
    return updated


def enable_key_rotation(k: Kernel, ctx: OpContext, req: EnableKeyRotationRequest) -> None:
    """Turn on automatic rotation every 90-2560 days (default 365)."""
    days = req.rotation_period_in_days or DEFAULT_ROTATION_DAYS

    def change(key: KeyRecord) -> KeyRecord:
        _check_rotatable(key)
        refuse_replica(key, "automatic rotation is set")
        return key.replace(
            rotation_enabled=True,
            rotation_period_days=days,
            next_rotation_date=k.clock.now() + days * DAY,
        )

    update_key(k, ctx, req.key_id, "rotate", "EnableKeyRotation", change)


def disable_key_rotation(k: Kernel, ctx: OpContext, req: DisableKeyRotationRequest) -> None:
    """Turn off automatic rotation."""

    def change(key: KeyRecord) -> KeyRecord:
        _check_rotatable(key)
        refuse_replica(key, "automatic rotation is set")
        return key.replace(rotation_enabled=False, next_rotation_date=None)

    update_key(k, ctx, req.key_id, "rotate", "DisableKeyRotation", change)


def get_key_rotation_status(
    k: Kernel, ctx: OpContext, req: GetKeyRotationStatusRequest
) -> GetKeyRotationStatusResponse:
    """Say whether automatic rotation is on, its period and next date.

    As in AWS KMS, asking about a key that cannot be rotated (asymmetric, HMAC) is an
    UnsupportedOperationException, not ``False``; a key with imported material rotates
    on demand only, so its automatic rotation is off.
    """

    def unit(tx: StoreTx) -> KeyRecord:
        key = k.resolve_key(tx, ctx, req.key_id)
        k.authorize(tx, ctx, key, "GetKeyRotationStatus")
        _check_rotatable(key, imported=True)
        return key

    key = k.read(unit)
    # AWS answers the bare key id here (RotateKeyOnDemand answers the key ARN)
    enabled = key.rotation_enabled
    return GetKeyRotationStatusResponse(
        key_id=key.key_id,
        key_rotation_enabled=enabled,
        next_rotation_date=key.next_rotation_date if enabled else None,
        rotation_period_in_days=key.rotation_period_days if enabled else None,
    )


def rotate_key_on_demand(
    k: Kernel, ctx: OpContext, req: RotateKeyOnDemandRequest
) -> RotateKeyOnDemandResponse:
    """Create a new version of a key's material now; every old version still decrypts."""

    def unit(tx: StoreTx) -> KeyRecord:
        key = k.resolve_key(tx, ctx, req.key_id)
        k.authorize(tx, ctx, key, "RotateKeyOnDemand")
        raw = tx.get_for_update(key.account_id, "key", key.row_name)
        key = KeyRecord.from_bytes(raw) if raw is not None else key
        check_state(key.key_state, "rotate", key.arn)
        _check_rotatable(key, imported=True)
        refuse_replica(key, "on-demand rotation is asked for")
        rows = tx.scan(key.account_id, "keyver", prefix=key_version_prefix(key))
        versions = [KeyVersionRecord.from_bytes(raw) for _, raw in rows]
        done = sum(1 for v in versions if v.rotation_type == "ON_DEMAND" and not v.pending_rotation)
        if done >= ON_DEMAND_ROTATION_LIMIT:
            raise LimitExceededError(
                f"{key.arn} has been rotated on demand {done} times, the most a key may be "
                f"(AWS KMS's quota of {ON_DEMAND_ROTATION_LIMIT}); automatic rotation goes on."
            )
        if key.origin == EXTERNAL:
            return _rotate_to_pending(k, tx, key, KeyMaterials.of(versions, key))
        return rotate_in_tx(k, tx, key, "ON_DEMAND")

    key = k.write(ctx, unit)
    k.forget_key(key.account_id, key.key_id)
    return RotateKeyOnDemandResponse(key_id=key.arn)


def list_key_rotations(
    k: Kernel, ctx: OpContext, req: ListKeyRotationsRequest
) -> ListKeyRotationsResponse:
    """List the rotations of a key (every version after the first), oldest first."""
    marker = req.marker

    def unit(tx: StoreTx) -> tuple[KeyRecord, list[KeyVersionRecord]]:
        key = k.resolve_key(tx, ctx, req.key_id)
        k.authorize(tx, ctx, key, "ListKeyRotations")
        _check_rotatable(key, imported=True)
        prefix = key_version_prefix(key)
        if marker is not None and not marker.startswith(prefix):
            raise InvalidMarkerError("Marker is invalid.")
        rows = tx.scan(key.account_id, "keyver", prefix=prefix, after=marker)
        return key, [KeyVersionRecord.from_bytes(raw) for _, raw in rows]

    key, versions = k.read(unit)
    # ROTATIONS_ONLY (the default) lists rotations; ALL_KEY_MATERIAL the first material
    # and any imported material pending rotation too
    every = req.include_key_material == "ALL_KEY_MATERIAL"
    if key.origin == EXTERNAL:  # rows of material never imported are not materials
        materials = KeyMaterials.of(versions, key)
        versions = list(materials.rows)
    rotations = [v for v in versions if every or (v.version >= 2 and not v.pending_rotation)]
    shown, truncated = page(rotations, req.limit)
    return ListKeyRotationsResponse(
        next_marker=key_version_name(key, shown[-1].version) if truncated else None,
        rotations=tuple(_rotation_entry(k, key, v) for v in shown),
        truncated=truncated,
    )


def _rotation_entry(k: Kernel, key: KeyRecord, version: KeyVersionRecord) -> RotationsListEntry:
    rotated = version.version > 1 and not version.pending_rotation
    imported = key.origin == EXTERNAL
    return RotationsListEntry(
        expiration_model=(
            version.expiration_model or KEY_MATERIAL_DOES_NOT_EXPIRE if imported else None
        ),
        import_state=import_state(version, k.clock.now()) if imported else None,
        key_id=key.key_id,
        key_material_description=version.description if imported else None,
        key_material_id=version.material_id
        or k.materials.material_id_of(None, key, version.version),
        key_material_state=material_state(key, version),
        rotation_date=version.created_at if rotated else None,
        rotation_type=version.rotation_type if rotated else None,
        valid_to=version.valid_to if imported else None,
    )


def _rotate_to_pending(
    k: Kernel, tx: StoreTx, key: KeyRecord, materials: KeyMaterials
) -> KeyRecord:
    """Make the imported material pending rotation current (RotateKeyOnDemand)."""
    now = k.clock.now()
    if not all(is_imported(row, now) for row in materials.bound):
        # a bound material expired and maintenance has not deleted it yet
        raise InvalidStateError(f"{key.arn} is pending import.")
    pending = materials.pending
    if pending is None or not is_imported(pending, now):
        raise InvalidStateError(
            f"{key.arn} has no imported key material pending rotation: import new key "
            "material (ImportKeyMaterial with ImportType NEW_KEY_MATERIAL) first."
        )
    rotated = pending.replace(pending_rotation=False, created_at=now)
    tx.put(key.account_id, "keyver", key_version_name(key, pending.version), rotated.to_bytes())
    updated = settle(
        key.replace(current_version=rotated.version),
        KeyMaterials.of([*materials.bound, rotated]),
        now,
    )
    save_key(tx, updated)
    return updated


def rotate_due_keys(k: Kernel) -> list[str]:
    """Rotate every key whose automatic rotation date has passed; return their ARNs."""
    now = k.clock.now()

    def unit(tx: StoreTx) -> list[str]:
        done = []
        for tenant in tx.tenants():
            for _, raw in tx.scan(tenant, "key"):
                key = KeyRecord.from_bytes(raw)
                if (
                    key.rotation_enabled
                    and not key.is_replica  # rotated with its primary
                    and key.key_state == "Enabled"
                    and key.next_rotation_date is not None
                    and key.next_rotation_date <= now
                ):
                    done.append(rotate_in_tx(k, tx, key, "AUTOMATIC").arn)
        return done

    arns = k.write(None, unit)
    for arn in arns:
        k.audit.record(
            {
                "operation": "RotateKey",
                "keyArn": arn,
                "result": "Success",
                "account": arn.split(":")[4],
            }
        )
    return arns
