"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

An alias belongs to one tenant and one region and points at one key there. Names start with
``alias/``; ``alias/aws/`` is reserved for AWS managed keys and refused.
"""

from __future__ import annotations

import re

from strongroom.errors import (
    AlreadyExistsError,
    InvalidAliasNameError,
    InvalidMarkerError,
    NotFoundError,
    ValidationError,
)
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.messages.aliases import (
    AliasListEntry,
    CreateAliasRequest,
    DeleteAliasRequest,
    ListAliasesRequest,
    ListAliasesResponse,
    UpdateAliasRequest,
)
from strongroom.kms.ops.keys import page
from strongroom.kms.records import AliasRecord, KeyRecord, key_row_name
from strongroom.kms.states import PENDING_DELETION, PENDING_REPLICA_DELETION, check_state
from strongroom.ports import StoreTx

ALIAS_NAME = re.compile(r"alias/[a-zA-Z0-9/_-]+")
"""What an alias name is, as AWS KMS documents it."""


def check_alias_name(name: str) -> None:
    """Refuse names without ``alias/`` or in the reserved ``alias/aws/`` namespace."""
    if not name.startswith("alias/") or len(name) <= len("alias/"):
        raise ValidationError(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        )
    if name.startswith("alias/aws/"):
        raise InvalidAliasNameError(f"Cannot create alias with prefix 'alias/aws/': {name}")
    if not ALIAS_NAME.fullmatch(name):
        # The model's pattern admits ':' (for ARNs); alias names themselves do not.
        raise ValidationError(
            f"1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {ALIAS_NAME.pattern}"
        )


def _target(k: Kernel, tx: StoreTx, ctx: OpContext, target: str, action: str) -> KeyRecord:
    """The key an alias is to point at: existence, permission, then state (AWS's order)."""
    if target.startswith("alias/") or ":alias/" in target:
        raise ValidationError("Aliases must refer to keys. Not aliases")
    key = k.resolve_key(tx, ctx, target)
    k.authorize(tx, ctx, key, action)
    if key.key_state in (PENDING_DELETION, PENDING_REPLICA_DELETION):
        check_state(key.key_state, "manage", key.arn)
    return key


def _alias_for_update(tx: StoreTx, account: str, region: str, name: str) -> AliasRecord:
    """The alias ``name`` of ``account`` in ``region``, locked; NotFoundError if none."""
    raw = tx.get_for_update(account, "alias", f"{region}/{name}")
    if raw is None:
        raise NotFoundError(f"Alias arn:aws:kms:{region}:{account}:{name} is not found.")
    return AliasRecord.from_bytes(raw)


def create_alias(k: Kernel, ctx: OpContext, req: CreateAliasRequest) -> None:
    """Create an alias for a key of the caller's tenant and region."""
    name = req.alias_name
    check_alias_name(name)

    def unit(tx: StoreTx) -> None:
        key = _target(k, tx, ctx, req.target_key_id, "CreateAlias")
        now = k.clock.now()
        record = AliasRecord(name, key.key_id, key.region, key.account_id, now, now)
        if not tx.insert(key.account_id, "alias", f"{key.region}/{name}", record.to_bytes()):
            raise AlreadyExistsError(f"An alias with the name {record.arn} already exists")

    k.write(ctx, unit)


def update_alias(k: Kernel, ctx: OpContext, req: UpdateAliasRequest) -> None:
    """Point an existing alias at another key of the same type and usage."""
    name = req.alias_name
    check_alias_name(name)
    account, region = ctx.caller.tenant, ctx.caller.region

    def unit(tx: StoreTx) -> None:
        alias = _alias_for_update(tx, account, region, name)
        key = _target(k, tx, ctx, req.target_key_id, "UpdateAlias")
        old_raw = tx.get(account, "key", key_row_name(alias.key_id, region))
        if old_raw is not None:
            old = KeyRecord.from_bytes(old_raw)
            k.authorize(tx, ctx, old, "UpdateAlias")  # both keys, as in AWS
            if (old.key_spec, old.key_usage) != (key.key_spec, key.key_usage):
                raise ValidationError(
                    f"{key.arn} is not of the same key spec and usage as the key the "
                    "alias points to."
                )
        updated = alias.replace(key_id=key.key_id, last_updated_date=k.clock.now())
        tx.put(account, "alias", f"{region}/{name}", updated.to_bytes())

    k.write(ctx, unit)


def delete_alias(k: Kernel, ctx: OpContext, req: DeleteAliasRequest) -> None:
    """Delete an alias (the key stays)."""
    name = req.alias_name
    check_alias_name(name)
    account, region = ctx.caller.tenant, ctx.caller.region

    def unit(tx: StoreTx) -> None:
        alias = _alias_for_update(tx, account, region, name)
        key_raw = tx.get(account, "key", key_row_name(alias.key_id, region))
        if key_raw is not None:  # AWS asks for kms:DeleteAlias on the key too
            k.authorize(tx, ctx, KeyRecord.from_bytes(key_raw), "DeleteAlias")
        tx.delete(account, "alias", f"{region}/{name}")

    k.write(ctx, unit)


def list_aliases(k: Kernel, ctx: OpContext, req: ListAliasesRequest) -> ListAliasesResponse:
    """List the caller's aliases in its region, optionally only those of one key."""
    marker = req.marker
    if marker is not None and not marker.startswith("alias/"):
        raise InvalidMarkerError("Marker is invalid.")
    account, region = ctx.caller.tenant, ctx.caller.region

    def unit(tx: StoreTx) -> list[AliasRecord]:
        key_id = None
        if req.key_id is not None:
            key_id = k.resolve_key(tx, ctx, req.key_id).key_id
        after = None if marker is None else f"{region}/{marker}"
        rows = tx.scan(account, "alias", prefix=f"{region}/", after=after)
        aliases = [AliasRecord.from_bytes(raw) for _, raw in rows]
        return [a for a in aliases if key_id is None or a.key_id == key_id]

    aliases, truncated = page(k.read(unit), req.limit)
    return ListAliasesResponse(
        aliases=tuple(
            AliasListEntry(
                alias_arn=a.arn,
                alias_name=a.alias_name,
                creation_date=a.creation_date,
                last_updated_date=a.last_updated_date,
                target_key_id=a.key_id,
            )
            for a in aliases
        ),
        next_marker=aliases[-1].alias_name if truncated else None,
        truncated=truncated,
    )
