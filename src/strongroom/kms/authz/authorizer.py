"""Who may do what to a key: the one place every key operation asks.

:class:`Authorizer` is the protocol the kernel requires (there is no default that allows);
:class:`KeyAuthorizer` is Strongroom's: tenancy first (a key of another tenant is never
usable), then the key policy (an explicit deny wins), then the caller's grants; anything
not allowed is denied. :class:`DenyAll` refuses everything, for tests that prove no
operation reaches a key without asking. Semantics: ``docs/policies.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from strongroom.errors import (
    AccessDeniedError,
    InvalidGrantTokenError,
    MalformedPolicyDocumentError,
)
from strongroom.kms.authz.grant_tokens import read_token, token_is_for
from strongroom.kms.authz.grants import (
    GRANT_OPERATIONS,
    GrantRecord,
    at_least_as_strict,
)
from strongroom.kms.authz.policy import Decision, KeyPolicy, PolicyCache, Request
from strongroom.kms.authz.principals import principal_covers
from strongroom.kms.caller import Caller
from strongroom.kms.records import KeyRecord
from strongroom.ports import StoreTx

LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
_EMPTY = KeyPolicy(())
# A member read through its Enum class (``Decision.ALLOW``) costs ~900 instructions on
# Python 3.11: EnumType defines __getattr__, so every attribute read of the class takes
# the slow hook. authorize compares with this name on every request.
_ALLOW = Decision.ALLOW


def denied(caller: Caller, resource: str, action: str, decision: Decision) -> AccessDeniedError:
    """The AccessDeniedException AWS returns, worded as AWS words it."""
    head = (
        f"User: {caller.principal_arn} is not authorized to perform: kms:{action} "
        f"on resource: {resource}"
    )
    if decision is Decision.DENY:
        return AccessDeniedError(head + " with an explicit deny in a resource-based policy")
    return AccessDeniedError(
        head + f" because no resource-based policy allows the kms:{action} action"
    )


def grants_of(tx: StoreTx, key: KeyRecord) -> list[GrantRecord]:
    """Every grant on ``key``, ordered by grant id."""
    rows = tx.scan(key.account_id, "grant", prefix=key.row_name + "/")
    return [GrantRecord.from_bytes(raw) for _, raw in rows]


def grant_for_token(tx: StoreTx, caller: Caller, token: str) -> GrantRecord:
    """The live grant a token names; ``InvalidGrantTokenError`` for anything else."""
    ref = read_token(token)
    raw = None
    if ref.account_id == caller.tenant:
        raw = tx.get(ref.account_id, "grant", f"{ref.key_id}/{ref.grant_id}")
    grant = None if raw is None else GrantRecord.from_bytes(raw)
    if grant is None or not token_is_for(tx, ref, grant):
        raise InvalidGrantTokenError("The grant token is not valid.")
    return grant


def is_grantee(caller: Caller, grant: GrantRecord) -> bool:
    """Whether ``grant``'s grantee principal names ``caller``."""
    return principal_covers(grant.grantee_principal, caller.principal_arn, caller.tenant)


def is_tenant_admin(caller: Caller) -> bool:
    """An admin principal, or the tenant's root principal."""
    return caller.is_admin or caller.principal_arn == f"arn:aws:iam::{caller.tenant}:root"


_WHOLE_ACCOUNT = re.compile(r"[0-9]{12}|arn:aws[a-z-]*:iam::[0-9]{12}:root")
"""A principal that names a whole account, not one principal of it."""


class Authorizer(Protocol):
    """Decides every access to a key; raises :class:`AccessDeniedError` to refuse.

    The guarantee: each method returns only when the caller is allowed; an implementation
    that cannot decide must refuse.
    """

    def authorize(
        self,
        tx: StoreTx,
        caller: Caller,
        key: KeyRecord,
        action: str,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] | None = None,
    ) -> None:
        """Allow ``caller`` to do ``action`` on ``key``, or raise."""

    def authorize_create_grant(
        self,
        tx: StoreTx,
        caller: Caller,
        key: KeyRecord,
        child: GrantRecord,
        grant_tokens: Sequence[str] | None,
    ) -> None:
        """Allow ``caller`` to create the grant ``child`` on ``key``, or raise."""

    def authorize_retire(self, caller: Caller, key_arn: str, grant: GrantRecord) -> None:
        """Allow ``caller`` to retire ``grant``, or raise."""

    def authorize_list_retirable(self, caller: Caller, retiring_principal: str) -> None:
        """Allow ``caller`` to list the grants ``retiring_principal`` may retire, or raise."""

    def check_new_policy(
        self, caller: Caller, text: str, key_arn: str | None, bypass_lockout: bool
    ) -> None:
        """Validate a key policy about to be stored (and the lockout check), or raise."""


class KeyAuthorizer:
    """Tenancy, then the key policy (deny wins), then grants; otherwise denied.

    ``use_grants=False`` leaves grants out (a deployment that wants policies only, and the
    test that proves the grant tests depend on this object).
    """

    def __init__(self, policies: PolicyCache | None = None, *, use_grants: bool = True) -> None:
        self.policies = policies if policies is not None else PolicyCache()
        self.use_grants = use_grants

    def __repr__(self) -> str:
        return f"KeyAuthorizer(use_grants={self.use_grants})"

    def key_policy(self, key: KeyRecord) -> KeyPolicy:
        """The parsed policy of ``key``; an unparseable stored policy allows nothing."""
        try:
            return self.policies.get(key.policy)
        except MalformedPolicyDocumentError:
            return _EMPTY

    def authorize(
        self,
        tx: StoreTx,
        caller: Caller,
        key: KeyRecord,
        action: str,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] | None = None,
    ) -> None:
        """Deny another tenant's key; deny wins; else the key policy or a grant allows."""
        if key.account_id != caller.tenant:
            raise AccessDeniedError(
                f"User: {caller.principal_arn} is not authorized to perform: "
                f"kms:{action} on resource: {key.arn}"
            )
        if grant_tokens:
            for token in grant_tokens:
                grant_for_token(tx, caller, token)
        decision = self.policies.decide(
            key.policy, caller.principal_arn, caller.tenant, action, key.arn, encryption_context
        )
        if decision is _ALLOW:
            return
        if self.use_grants and decision is Decision.NONE and action in GRANT_OPERATIONS:
            for grant in grants_of(tx, key):
                if is_grantee(caller, grant) and grant.permits(action, encryption_context):
                    return
        raise denied(caller, key.arn, action, decision)

    def authorize_create_grant(
        self,
        tx: StoreTx,
        caller: Caller,
        key: KeyRecord,
        child: GrantRecord,
        grant_tokens: Sequence[str] | None,
    ) -> None:
        """Key policy (with the grant's condition keys), else a grant that may make it.

        A grant that allows CreateGrant lets its grantee make grants with a subset of its
        operations and constraints at least as strict as its own.
        """
        if key.account_id != caller.tenant:
            raise denied(caller, key.arn, "CreateGrant", Decision.NONE)
        if grant_tokens:
            for token in grant_tokens:
                grant_for_token(tx, caller, token)
        context: dict[str, tuple[str, ...]] = {
            "kms:granteeprincipal": (child.grantee_principal,),
            "kms:grantoperations": child.operations,
        }
        if child.retiring_principal is not None:
            context["kms:retiringprincipal"] = (child.retiring_principal,)
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
        if self.use_grants and decision is Decision.NONE:
            for parent in grants_of(tx, key):
                if (
                    "CreateGrant" in parent.operations
                    and is_grantee(caller, parent)
                    and set(child.operations) <= set(parent.operations)
                    and at_least_as_strict(child.equals, child.subset, parent.equals, parent.subset)
                ):
                    return
        raise denied(caller, key.arn, "CreateGrant", decision)

    def authorize_retire(self, caller: Caller, key_arn: str, grant: GrantRecord) -> None:
        """Its retiring principal, its grantee if it allows RetireGrant, a tenant admin."""
        retiring = grant.retiring_principal
        by_retiring = retiring is not None and principal_covers(
            retiring, caller.principal_arn, caller.tenant
        )
        by_grantee = self.use_grants and "RetireGrant" in grant.operations
        if grant.account_id == caller.tenant and (
            by_retiring or (by_grantee and is_grantee(caller, grant)) or is_tenant_admin(caller)
        ):
            return
        raise denied(caller, key_arn, "RetireGrant", Decision.NONE)

    def authorize_list_retirable(self, caller: Caller, retiring_principal: str) -> None:
        """The tenant's admins, and a principal asking about itself (or a role it acts as).

        The account (its root ARN or its id) covers every principal in key policies, but
        the grants it may retire are the whole tenant's: only an administrator lists those.
        """
        if is_tenant_admin(caller):
            return
        if not _WHOLE_ACCOUNT.fullmatch(retiring_principal) and principal_covers(
            retiring_principal, caller.principal_arn, caller.tenant
        ):
            return
        raise denied(caller, "*", "ListRetirableGrants", Decision.NONE)

    def check_new_policy(
        self, caller: Caller, text: str, key_arn: str | None, bypass_lockout: bool
    ) -> None:
        """Parse (cached) and, unless bypassed, AWS's lockout safety check.

        The caller must keep ``kms:PutKeyPolicy`` under the new policy.
        """
        parsed = self.policies.get(text)
        if bypass_lockout:
            return
        request = Request(caller.principal_arn, caller.tenant, "PutKeyPolicy", key_arn)
        if parsed.evaluate(request) is not Decision.ALLOW:
            raise MalformedPolicyDocumentError(LOCKOUT)


class DenyAll:
    """Refuses every access to every key (policies are still parsed when stored)."""

    def __init__(self) -> None:
        self.policies = PolicyCache()

    def __repr__(self) -> str:
        return "DenyAll()"

    def authorize(
        self,
        tx: StoreTx,
        caller: Caller,
        key: KeyRecord,
        action: str,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] | None = None,
    ) -> None:
        """Refuse."""
        raise denied(caller, key.arn, action, Decision.NONE)

    def authorize_create_grant(
        self,
        tx: StoreTx,
        caller: Caller,
        key: KeyRecord,
        child: GrantRecord,
        grant_tokens: Sequence[str] | None,
    ) -> None:
        """Refuse."""
        raise denied(caller, key.arn, "CreateGrant", Decision.NONE)

    def authorize_retire(self, caller: Caller, key_arn: str, grant: GrantRecord) -> None:
        """Refuse."""
        raise denied(caller, key_arn, "RetireGrant", Decision.NONE)

    def authorize_list_retirable(self, caller: Caller, retiring_principal: str) -> None:
        """Refuse."""
        raise denied(caller, "*", "ListRetirableGrants", Decision.NONE)

    def check_new_policy(
        self, caller: Caller, text: str, key_arn: str | None, bypass_lockout: bool
    ) -> None:
        """Parse only: storing a policy is decided by ``authorize`` (PutKeyPolicy)."""
        self.policies.get(text)
