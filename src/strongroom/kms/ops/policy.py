"""Key policy operations: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies.

A new policy is validated and lockout-checked by the kernel's authoriser
(:meth:`~strongroom.kms.authz.Authorizer.check_new_policy`) before it is stored.
Semantics: ``docs/policies.md``.
"""

from __future__ import annotations

from typing import Any

from strongroom.errors import NotFoundError
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.ops.keys import update_key
from strongroom.kms.records import KeyRecord


def _policy_name(req: dict[str, Any]) -> None:
    name = req.get("PolicyName") or "default"
    if name != "default":
        raise NotFoundError(f"No such policy exists: {name}")


def get_key_policy(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Return a key's policy document."""
    _policy_name(req)
    key = k.read(lambda tx: k.resolve_key(tx, ctx, req["KeyId"]))
    k.read(lambda tx: k.authorize(tx, ctx, key, "GetKeyPolicy"))
    return {"Policy": key.policy, "PolicyName": "default"}


def put_key_policy(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Replace a key's policy: authorised, validated, lockout-checked, then saved."""
    _policy_name(req)
    text = req["Policy"]
    bypass = bool(req.get("BypassPolicyLockoutSafetyCheck"))

    def change(key: KeyRecord) -> KeyRecord:
        k.authorizer.check_new_policy(ctx.caller, text, key.arn, bypass)
        return key.replace(policy=text)

    update_key(k, ctx, req, "manage", "PutKeyPolicy", change)
    return {}


def list_key_policies(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """List policy names: always just ``default``."""
    key = k.read(lambda tx: k.resolve_key(tx, ctx, req["KeyId"]))
    k.read(lambda tx: k.authorize(tx, ctx, key, "ListKeyPolicies"))
    return {"PolicyNames": ["default"], "Truncated": False}
