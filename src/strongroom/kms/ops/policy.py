"""Key policy operations: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies.

A new policy is validated and lockout-checked by the kernel's authoriser
(:meth:`~strongroom.kms.authz.Authorizer.check_new_policy`) before it is stored.
Semantics: ``docs/policies.md``.
"""

from __future__ import annotations

from strongroom.errors import NotFoundError
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.messages.policy import (
    GetKeyPolicyRequest,
    GetKeyPolicyResponse,
    ListKeyPoliciesRequest,
    ListKeyPoliciesResponse,
    PutKeyPolicyRequest,
)
from strongroom.kms.ops.keys import update_key
from strongroom.kms.records import KeyRecord


def _policy_name(name: str | None) -> None:
    name = name or "default"
    if name != "default":
        raise NotFoundError(f"No such policy exists: {name}")


def get_key_policy(k: Kernel, ctx: OpContext, req: GetKeyPolicyRequest) -> GetKeyPolicyResponse:
    """Return a key's policy document."""
    _policy_name(req.policy_name)
    key = k.read(lambda tx: k.resolve_key(tx, ctx, req.key_id))
    k.read(lambda tx: k.authorize(tx, ctx, key, "GetKeyPolicy"))
    return GetKeyPolicyResponse(policy=key.policy, policy_name="default")


def put_key_policy(k: Kernel, ctx: OpContext, req: PutKeyPolicyRequest) -> None:
    """Replace a key's policy: authorised, validated, lockout-checked, then saved."""
    _policy_name(req.policy_name)
    text = req.policy
    bypass = bool(req.bypass_policy_lockout_safety_check)

    def change(key: KeyRecord) -> KeyRecord:
        k.authorizer.check_new_policy(ctx.caller, text, key.arn, bypass)
        return key.replace(policy=text)

    update_key(k, ctx, req.key_id, "manage", "PutKeyPolicy", change)


def list_key_policies(
    k: Kernel, ctx: OpContext, req: ListKeyPoliciesRequest
) -> ListKeyPoliciesResponse:
    """List policy names: always just ``default``."""
    key = k.read(lambda tx: k.resolve_key(tx, ctx, req.key_id))
    k.read(lambda tx: k.authorize(tx, ctx, key, "ListKeyPolicies"))
    return ListKeyPoliciesResponse(policy_names=("default",), truncated=False)
