"""The grant operations: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

Who may use a grant, make one, or retire one is decided by the kernel's authoriser
(:mod:`strongroom.kms.authz`). Semantics: ``docs/policies.md``.
"""

from __future__ import annotations

from strongroom.errors import (
    InvalidGrantIdError,
    InvalidGrantTokenError,
    InvalidMarkerError,
    LimitExceededError,
    NotFoundError,
    ValidationError,
)
from strongroom.kms.authz.authorizer import grant_for_token, grants_of
from strongroom.kms.authz.grant_tokens import issue_token
from strongroom.kms.authz.grants import (
    GRANT_ID,
    GrantRecord,
    check_constraint,
    check_grant_fits,
    new_grant_id,
)
from strongroom.kms.authz.principals import valid_principal
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.messages.grants import (
    CreateGrantRequest,
    CreateGrantResponse,
    GrantListEntry,
    ListGrantsRequest,
    ListGrantsResponse,
    ListRetirableGrantsRequest,
    RetireGrantRequest,
    RevokeGrantRequest,
)
from strongroom.kms.ops.keys import page
from strongroom.kms.records import KeyRecord, key_id_of_row
from strongroom.kms.states import check_state
from strongroom.ports import StoreTx

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 100


def create_grant(k: Kernel, ctx: OpContext, req: CreateGrantRequest) -> CreateGrantResponse:
    """Create a grant (or return the existing one for a retried named request)."""
    operations = list(dict.fromkeys(req.operations))
    if not operations:
        raise ValidationError("A grant must allow at least one operation.")
    for member, principal in (
        ("GranteePrincipal", req.grantee_principal),
        ("RetiringPrincipal", req.retiring_principal),
    ):
        if principal is not None and not valid_principal(principal):
            raise ValidationError(f"{member} {principal!r} is not a valid principal.")
    # GranteePrincipal is optional in the model only for service principals, which
    # refuse_unoffered refuses and whose absence it reports before this runs
    grantee = str(req.grantee_principal)
    constraints = req.constraints
    equals = check_constraint(
        None if constraints is None else constraints.encryption_context_equals,
        "EncryptionContextEquals",
    )
    subset = check_constraint(
        None if constraints is None else constraints.encryption_context_subset,
        "EncryptionContextSubset",
    )
    account = ctx.caller.tenant

    def unit(tx: StoreTx) -> tuple[GrantRecord, str]:
        grant = create(tx)
        return grant, issue_token(tx, grant)

    def create(tx: StoreTx) -> GrantRecord:
        key = k.resolve_key(tx, ctx, req.key_id)
        candidate = GrantRecord(
            grant_id=new_grant_id(),
            key_id=key.row_name,  # a multi-Region key's grants are per region
            account_id=account,
            grantee_principal=grantee,
            operations=tuple(operations),
            creation_date=k.clock.now(),
            retiring_principal=req.retiring_principal,
            name=req.name,
            context_equals=None if equals is None else tuple(equals.items()),
            context_subset=None if subset is None else tuple(subset.items()),
        )
        k.authorizer.authorize_create_grant(tx, ctx.caller, key, candidate, req.grant_tokens)
        raw = tx.get_for_update(account, "key", key.row_name)
        key = KeyRecord.from_bytes(raw) if raw is not None else key
        check_state(key.key_state, "manage", key.arn)
        check_grant_fits(key, candidate)
        existing = grants_of(tx, key)
        if candidate.name is not None:
            for grant in existing:
                if grant.same_as(candidate):
                    return grant
        if len(existing) >= k.max_grants_per_key:
            raise LimitExceededError(
                f"{key.arn} has {k.max_grants_per_key} grants, the most a key can have."
            )
        tx.insert(account, "grant", candidate.store_name, candidate.to_bytes())
        return candidate

    grant, token = k.write(ctx, unit)
    return CreateGrantResponse(grant_id=grant.grant_id, grant_token=token)


def _limit(limit: int | None) -> int:
    return DEFAULT_LIST_LIMIT if limit is None else min(limit, MAX_LIST_LIMIT)


def _listing(entries: list[GrantListEntry], truncated: bool, marker: str) -> ListGrantsResponse:
    return ListGrantsResponse(
        grants=tuple(entries), next_marker=marker if truncated else None, truncated=truncated
    )


def list_grants(k: Kernel, ctx: OpContext, req: ListGrantsRequest) -> ListGrantsResponse:
    """List a key's grants, optionally one grant id or one grantee, paginated."""
    marker, grant_id = req.marker, req.grant_id
    if marker is not None and not GRANT_ID.fullmatch(marker):
        raise InvalidMarkerError("Marker is invalid.")
    if grant_id is not None and not GRANT_ID.fullmatch(grant_id):
        raise InvalidGrantIdError(f"Invalid grant id: {grant_id}")
    grantee = req.grantee_principal

    def unit(tx: StoreTx) -> tuple[KeyRecord, list[GrantRecord]]:
        key = k.resolve_key(tx, ctx, req.key_id)
        k.authorize(tx, ctx, key, "ListGrants")
        after = None if marker is None else f"{key.row_name}/{marker}"
        rows = tx.scan(key.account_id, "grant", prefix=key.row_name + "/", after=after)
        grants = [GrantRecord.from_bytes(raw) for _, raw in rows]
        return key, [
            g
            for g in grants
            if (grant_id is None or g.grant_id == grant_id)
            and (grantee is None or g.grantee_principal == grantee)
        ]

    key, grants = k.read(unit)
    shown, truncated = page(grants, _limit(req.limit))
    entries = [g.list_entry(key.arn) for g in shown]
    return _listing(entries, truncated, shown[-1].grant_id if shown else "")


def list_retirable_grants(
    k: Kernel, ctx: OpContext, req: ListRetirableGrantsRequest
) -> ListGrantsResponse:
    """List the tenant's grants that name ``RetiringPrincipal`` as retiring principal.

    Allowed to principals the retiring principal covers and to the tenant's admins.
    """
    # required here; the model leaves it optional only for service principals (refused)
    principal, marker = str(req.retiring_principal), req.marker
    if marker is not None and (
        "/" not in marker or not GRANT_ID.fullmatch(marker.rsplit("/", 1)[1])
    ):
        raise InvalidMarkerError("Marker is invalid.")
    caller = ctx.caller
    k.authorizer.authorize_list_retirable(caller, principal)

    def unit(tx: StoreTx) -> list[tuple[str, GrantRecord]]:
        keys: dict[str, KeyRecord | None] = {}
        out = []
        for _, raw in tx.scan(caller.tenant, "grant", after=marker):
            grant = GrantRecord.from_bytes(raw)
            if grant.retiring_principal != principal:
                continue
            if grant.key_id not in keys:
                key_raw = tx.get(caller.tenant, "key", grant.key_id)
                key = None if key_raw is None else KeyRecord.from_bytes(key_raw)
                if key is not None and (key.region != caller.region or k.is_past_deletion(key)):
                    key = None
                keys[grant.key_id] = key
            found = keys[grant.key_id]
            if found is not None:
                out.append((found.arn, grant))
        return out

    shown, truncated = page(k.read(unit), _limit(req.limit))
    entries = [grant.list_entry(arn) for arn, grant in shown]
    return _listing(entries, truncated, shown[-1][1].store_name if shown else "")


def retire_grant(k: Kernel, ctx: OpContext, req: RetireGrantRequest) -> None:
    """Delete a grant named by token or by KeyId and GrantId.

    Allowed to its retiring principal, to its grantee if it allows RetireGrant, and to
    the tenant's admins.
    """
    token, key_spec, grant_id = req.grant_token, req.key_id, req.grant_id
    if token is None and (key_spec is None or grant_id is None):
        raise ValidationError("Specify a GrantToken, or both a KeyId and a GrantId.")
    if grant_id is not None and not GRANT_ID.fullmatch(grant_id):
        raise InvalidGrantIdError(f"Invalid grant id: {grant_id}")

    def unit(tx: StoreTx) -> None:
        if token is not None:
            grant = grant_for_token(tx, ctx.caller, token)
            key = k.resolve_key(tx, ctx, key_id_of_row(grant.key_id))
            if key.row_name != grant.key_id:  # a grant of a related key in another region
                raise InvalidGrantTokenError("The grant token is not valid.")
            if key_spec is not None and k.resolve_key(tx, ctx, key_spec).key_id != key.key_id:
                raise ValidationError("The KeyId does not match the grant token.")
            if grant_id is not None and grant_id != grant.grant_id:
                raise InvalidGrantIdError("The GrantId does not match the grant token.")
        else:
            key = k.resolve_key(tx, ctx, str(key_spec))
            raw = tx.get(key.account_id, "grant", f"{key.row_name}/{grant_id}")
            if raw is None:
                raise NotFoundError(f"Grant ID {grant_id} not found")
            grant = GrantRecord.from_bytes(raw)
        k.authorizer.authorize_retire(ctx.caller, key.arn, grant)
        tx.delete(key.account_id, "grant", grant.store_name)

    k.write(ctx, unit)


def revoke_grant(k: Kernel, ctx: OpContext, req: RevokeGrantRequest) -> None:
    """Delete a grant of a key; needs ``kms:RevokeGrant`` in the key policy."""
    grant_id = req.grant_id
    if not GRANT_ID.fullmatch(grant_id):
        raise InvalidGrantIdError(f"Invalid grant id: {grant_id}")

    def unit(tx: StoreTx) -> None:
        key = k.resolve_key(tx, ctx, req.key_id)
        k.authorize(tx, ctx, key, "RevokeGrant")
        if not tx.delete(key.account_id, "grant", f"{key.row_name}/{grant_id}"):
            raise NotFoundError(f"Grant ID {grant_id} not found")

    k.write(ctx, unit)
