"""Authorisation by key policies and grants, and the grant operations.

:class:`GrantOps` fills the core's ``check_policy`` hook (every operation on a key asks it:
an explicit deny wins, else the key policy or a matching grant allows) and adds
CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and RevokeGrant. The key policy
side (parsing, ``check_policy_document``, the lockout safety check of CreateKey and
PutKeyPolicy) is :class:`~strongroom.kms.ops_policy.PolicyOps`. Semantics:
``docs/policies.md``.
"""

from __future__ import annotations

from typing import Any

from strongroom.errors import (
    InvalidGrantIdError,
    InvalidGrantTokenError,
    InvalidMarkerError,
    LimitExceededError,
    NotFoundError,
    ValidationError,
)
from strongroom.kms.core import OpContext
from strongroom.kms.grants import (
    GRANT_ID,
    GRANT_OPERATIONS,
    MAX_GRANTS_PER_KEY,
    GrantRecord,
    at_least_as_strict,
    check_constraint,
    check_grant_fits,
    issue_token,
    new_grant_id,
    new_grant_secret,
    read_token,
    token_is_for,
)
from strongroom.kms.ops_keys import page
from strongroom.kms.ops_policy import PolicyOps
from strongroom.kms.policy import Decision, Request
from strongroom.kms.ports import StoreTx
from strongroom.kms.principals import principal_covers, valid_principal
from strongroom.kms.records import KeyRecord
from strongroom.kms.states import check_state

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 100


class GrantOps(PolicyOps):
    """Key policy and grant authorisation; CreateGrant, List(Retirable)Grants, Retire/Revoke."""

    def __init__(
        self, *args: Any, max_grants_per_key: int = MAX_GRANTS_PER_KEY, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_grants_per_key = max_grants_per_key

    # -- hooks of the core -----------------------------------------------------------------

    def check_policy(
        self,
        tx: StoreTx,
        ctx: OpContext,
        key: KeyRecord,
        action: str,
        encryption_context: dict[str, str] | None,
        grant_tokens: list[str] | None,
    ) -> None:
        """Deny wins; else the key policy or a matching grant allows; else access denied."""
        if grant_tokens:
            self.check_grant_tokens(tx, ctx, grant_tokens)
        caller = ctx.caller
        decision = self.policies.decide(
            key.policy, caller.principal_arn, caller.tenant, action, key.arn, encryption_context
        )
        if decision is Decision.ALLOW:
            return
        if decision is Decision.NONE and action in GRANT_OPERATIONS:
            for grant in self.grants_of(tx, key):
                if self._is_grantee(ctx, grant) and grant.permits(action, encryption_context):
                    return
        raise self.denied(ctx, key.arn, action, decision)

    # -- building blocks -------------------------------------------------------------------

    @staticmethod
    def _is_grantee(ctx: OpContext, grant: GrantRecord) -> bool:
        return principal_covers(
            grant.grantee_principal, ctx.caller.principal_arn, ctx.caller.tenant
        )

    @staticmethod
    def grants_of(tx: StoreTx, key: KeyRecord) -> list[GrantRecord]:
        """Every grant on ``key``, ordered by grant id."""
        rows = tx.scan(key.account_id, "grant", prefix=key.key_id + "/")
        return [GrantRecord.from_bytes(raw) for _, raw in rows]

    def check_grant_tokens(self, tx: StoreTx, ctx: OpContext, tokens: list[str]) -> None:
        """Every token must be one we issued for a live grant of the caller's tenant."""
        for token in tokens:
            self.grant_for_token(tx, ctx, token)

    @staticmethod
    def grant_for_token(tx: StoreTx, ctx: OpContext, token: str) -> GrantRecord:
        """The live grant a token names; ``InvalidGrantTokenError`` for anything else."""
        ref = read_token(token)
        raw = None
        if ref.account_id == ctx.caller.tenant:
            raw = tx.get(ref.account_id, "grant", f"{ref.key_id}/{ref.grant_id}")
        grant = None if raw is None else GrantRecord.from_bytes(raw)
        if grant is None or not token_is_for(ref, grant):
            raise InvalidGrantTokenError("The grant token is not valid.")
        return grant

    @staticmethod
    def _is_tenant_admin(ctx: OpContext) -> bool:
        caller = ctx.caller
        return caller.is_admin or caller.principal_arn == f"arn:aws:iam::{caller.tenant}:root"

    # -- CreateGrant -----------------------------------------------------------------------

    def op_create_grant(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """Create a grant (or return the existing one for a retried named request)."""
        operations = list(dict.fromkeys(req["Operations"]))
        if not operations:
            raise ValidationError("A grant must allow at least one operation.")
        for member in ("GranteePrincipal", "RetiringPrincipal"):
            if req.get(member) is not None and not valid_principal(req[member]):
                raise ValidationError(f"{member} {req[member]!r} is not a valid principal.")
        constraints = req.get("Constraints") or {}
        equals = check_constraint(
            constraints.get("EncryptionContextEquals"), "EncryptionContextEquals"
        )
        subset = check_constraint(
            constraints.get("EncryptionContextSubset"), "EncryptionContextSubset"
        )
        account = ctx.caller.tenant

        def unit(tx: StoreTx) -> GrantRecord:
            key = self.resolve_key(tx, ctx, req["KeyId"])
            candidate = GrantRecord(
                grant_id=new_grant_id(),
                key_id=key.key_id,
                account_id=account,
                grantee_principal=req["GranteePrincipal"],
                operations=tuple(operations),
                creation_date=self.clock.now(),
                token_secret=new_grant_secret(),
                retiring_principal=req.get("RetiringPrincipal"),
                name=req.get("Name"),
                context_equals=None if equals is None else tuple(equals.items()),
                context_subset=None if subset is None else tuple(subset.items()),
            )
            self._authorize_create_grant(tx, ctx, key, candidate, req.get("GrantTokens"))
            raw = tx.get_for_update(account, "key", key.key_id)
            key = KeyRecord.from_bytes(raw) if raw is not None else key
            check_state(key.key_state, "manage", key.arn)
            check_grant_fits(key, candidate)
            existing = self.grants_of(tx, key)
            if candidate.name is not None:
                for grant in existing:
                    if grant.same_as(candidate):
                        return grant
            if len(existing) >= self.max_grants_per_key:
                raise LimitExceededError(
                    f"{key.arn} has {self.max_grants_per_key} grants, the most a key can have."
                )
            tx.insert(account, "grant", candidate.store_name, candidate.to_bytes())
            return candidate

        grant = self.write(ctx, unit)
        return {"GrantId": grant.grant_id, "GrantToken": issue_token(grant)}

    def _authorize_create_grant(
        self,
        tx: StoreTx,
        ctx: OpContext,
        key: KeyRecord,
        child: GrantRecord,
        tokens: list[str] | None,
    ) -> None:
        """Key policy (with the grant's condition keys), else a grant that may make it.

        A grant that allows CreateGrant lets its grantee make grants with a subset of its
        operations and constraints at least as strict as its own.
        """
        if tokens:
            self.check_grant_tokens(tx, ctx, tokens)
        context: dict[str, tuple[str, ...]] = {
            "kms:granteeprincipal": (child.grantee_principal,),
            "kms:grantoperations": child.operations,
        }
        if child.retiring_principal is not None:
            context["kms:retiringprincipal"] = (child.retiring_principal,)
        caller = ctx.caller
        request = Request(
            caller.principal_arn,
            caller.tenant,
            "CreateGrant",
            key.arn,
            child.equals if child.equals is not None else child.subset,
            context,
        )
        decision = self.key_policy(key).evaluate(request)
        if decision is Decision.ALLOW:
            return
        if decision is Decision.NONE:
            for parent in self.grants_of(tx, key):
                if (
                    "CreateGrant" in parent.operations
                    and self._is_grantee(ctx, parent)
                    and set(child.operations) <= set(parent.operations)
                    and at_least_as_strict(child.equals, child.subset, parent.equals, parent.subset)
                ):
                    return
        raise self.denied(ctx, key.arn, "CreateGrant", decision)

    # -- listing ---------------------------------------------------------------------------

    @staticmethod
    def _limit(req: dict[str, Any]) -> int:
        limit = req.get("Limit")
        return DEFAULT_LIST_LIMIT if limit is None else min(int(limit), MAX_LIST_LIMIT)

    @staticmethod
    def _listing(entries: list[dict[str, Any]], truncated: bool, marker: str) -> dict[str, Any]:
        response: dict[str, Any] = {"Grants": entries, "Truncated": truncated}
        if truncated:
            response["NextMarker"] = marker
        return response

    def op_list_grants(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """List a key's grants, optionally one grant id or one grantee, paginated."""
        marker, grant_id = req.get("Marker"), req.get("GrantId")
        if marker is not None and not GRANT_ID.fullmatch(marker):
            raise InvalidMarkerError("Marker is invalid.")
        if grant_id is not None and not GRANT_ID.fullmatch(grant_id):
            raise InvalidGrantIdError(f"Invalid grant id: {grant_id}")
        grantee = req.get("GranteePrincipal")

        def unit(tx: StoreTx) -> tuple[KeyRecord, list[GrantRecord]]:
            key = self.resolve_key(tx, ctx, req["KeyId"])
            self.authorize(tx, ctx, key, "ListGrants")
            after = None if marker is None else f"{key.key_id}/{marker}"
            rows = tx.scan(key.account_id, "grant", prefix=key.key_id + "/", after=after)
            grants = [GrantRecord.from_bytes(raw) for _, raw in rows]
            return key, [
                g
                for g in grants
                if (grant_id is None or g.grant_id == grant_id)
                and (grantee is None or g.grantee_principal == grantee)
            ]

        key, grants = self.read(unit)
        shown, truncated = page(grants, self._limit(req))
        entries = [g.list_entry(key.arn) for g in shown]
        return self._listing(entries, truncated, shown[-1].grant_id if shown else "")

    def op_list_retirable_grants(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """List the tenant's grants that name ``RetiringPrincipal`` as retiring principal.

        Allowed to principals the retiring principal covers and to the tenant's admins.
        """
        principal, marker = req["RetiringPrincipal"], req.get("Marker")
        if marker is not None and (
            "/" not in marker or not GRANT_ID.fullmatch(marker.rsplit("/", 1)[1])
        ):
            raise InvalidMarkerError("Marker is invalid.")
        caller = ctx.caller
        if not (
            self._is_tenant_admin(ctx)
            or principal_covers(principal, caller.principal_arn, caller.tenant)
        ):
            raise self.denied(ctx, "*", "ListRetirableGrants", Decision.NONE)

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
                    if key is not None and (
                        key.region != caller.region or self.is_past_deletion(key)
                    ):
                        key = None
                    keys[grant.key_id] = key
                found = keys[grant.key_id]
                if found is not None:
                    out.append((found.arn, grant))
            return out

        shown, truncated = page(self.read(unit), self._limit(req))
        entries = [grant.list_entry(arn) for arn, grant in shown]
        return self._listing(entries, truncated, shown[-1][1].store_name if shown else "")

    # -- RetireGrant and RevokeGrant -------------------------------------------------------

    def op_retire_grant(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """Delete a grant named by token or by KeyId and GrantId.

        Allowed to its retiring principal, to its grantee if it allows RetireGrant, and to
        the tenant's admins.
        """
        token, key_spec, grant_id = req.get("GrantToken"), req.get("KeyId"), req.get("GrantId")
        if token is None and (key_spec is None or grant_id is None):
            raise ValidationError("Specify a GrantToken, or both a KeyId and a GrantId.")
        if grant_id is not None and not GRANT_ID.fullmatch(grant_id):
            raise InvalidGrantIdError(f"Invalid grant id: {grant_id}")

        def unit(tx: StoreTx) -> None:
            if token is not None:
                grant = self.grant_for_token(tx, ctx, token)
                key = self.resolve_key(tx, ctx, grant.key_id)
                if (
                    key_spec is not None
                    and self.resolve_key(tx, ctx, key_spec).key_id != key.key_id
                ):
                    raise ValidationError("The KeyId does not match the grant token.")
                if grant_id is not None and grant_id != grant.grant_id:
                    raise InvalidGrantIdError("The GrantId does not match the grant token.")
            else:
                key = self.resolve_key(tx, ctx, str(key_spec))
                raw = tx.get(key.account_id, "grant", f"{key.key_id}/{grant_id}")
                if raw is None:
                    raise NotFoundError(f"Grant ID {grant_id} not found")
                grant = GrantRecord.from_bytes(raw)
            caller = ctx.caller
            retiring = grant.retiring_principal
            if not (
                (
                    retiring is not None
                    and principal_covers(retiring, caller.principal_arn, caller.tenant)
                )
                or ("RetireGrant" in grant.operations and self._is_grantee(ctx, grant))
                or self._is_tenant_admin(ctx)
            ):
                raise self.denied(ctx, key.arn, "RetireGrant", Decision.NONE)
            tx.delete(key.account_id, "grant", grant.store_name)

        self.write(ctx, unit)
        return {}

    def op_revoke_grant(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """Delete a grant of a key; needs ``kms:RevokeGrant`` in the key policy."""
        grant_id = req["GrantId"]
        if not GRANT_ID.fullmatch(grant_id):
            raise InvalidGrantIdError(f"Invalid grant id: {grant_id}")

        def unit(tx: StoreTx) -> None:
            key = self.resolve_key(tx, ctx, req["KeyId"])
            self.authorize(tx, ctx, key, "RevokeGrant")
            if not tx.delete(key.account_id, "grant", f"{key.key_id}/{grant_id}"):
                raise NotFoundError(f"Grant ID {grant_id} not found")

        self.write(ctx, unit)
        return {}
