"""Key policies in the service: parsing (cached), AWS's wording of a refusal, the lockout check.

:class:`PolicyOps` fills the core's ``check_policy_document`` hook (CreateKey and
PutKeyPolicy validate a policy before it is stored) and refuses, unless
``BypassPolicyLockoutSafetyCheck`` is set, a policy that would take ``kms:PutKeyPolicy``
away from the caller, as AWS does. :class:`~strongroom.kms.ops_grants.GrantOps` builds the
authorisation on it. Semantics: ``docs/policies.md``.
"""

from __future__ import annotations

from typing import Any

from strongroom.errors import AccessDeniedError, MalformedPolicyDocumentError, NotFoundError
from strongroom.kms.core import OpContext
from strongroom.kms.ops_keys import KeyOps
from strongroom.kms.policy import Decision, KeyPolicy, PolicyCache, Request
from strongroom.kms.records import KeyRecord

LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
_EMPTY = KeyPolicy(())


class PolicyOps(KeyOps):
    """Key policies: the parse cache, the document hook, PutKeyPolicy and the lockout check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policies = PolicyCache()

    # -- hooks of the core -----------------------------------------------------------------

    def check_policy_document(self, policy: str, account_id: str) -> None:
        """Parse and validate a key policy (cached); raise what is wrong with it."""
        self.policies.get(policy)

    def key_policy(self, key: KeyRecord) -> KeyPolicy:
        """The parsed policy of ``key``; an unparseable stored policy allows nothing."""
        try:
            return self.policies.get(key.policy)
        except MalformedPolicyDocumentError:
            return _EMPTY

    @staticmethod
    def denied(ctx: OpContext, resource: str, action: str, decision: Decision) -> AccessDeniedError:
        """The AccessDeniedException AWS returns, worded as AWS words it."""
        head = (
            f"User: {ctx.caller.principal_arn} is not authorized to perform: kms:{action} "
            f"on resource: {resource}"
        )
        if decision is Decision.DENY:
            return AccessDeniedError(head + " with an explicit deny in a resource-based policy")
        return AccessDeniedError(
            head + f" because no resource-based policy allows the kms:{action} action"
        )

    def check_lockout(self, ctx: OpContext, policy: KeyPolicy, key_arn: str | None) -> None:
        """AWS's lockout safety check: the caller must keep ``kms:PutKeyPolicy``."""
        caller = ctx.caller
        request = Request(caller.principal_arn, caller.tenant, "PutKeyPolicy", key_arn)
        if policy.evaluate(request) is not Decision.ALLOW:
            raise MalformedPolicyDocumentError(LOCKOUT)

    # -- key policies: lockout safety check --------------------------------------------------

    def op_create_key(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """CreateKey, refusing a policy that would lock the caller out (unless bypassed)."""
        policy = req.get("Policy")
        if policy is not None and not req.get("BypassPolicyLockoutSafetyCheck"):
            self.check_lockout(ctx, self.policies.get(policy), None)
        return super().op_create_key(ctx, req)

    def op_put_key_policy(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """Replace a key's policy: authorised, validated, lockout-checked, then saved."""
        name = req.get("PolicyName") or "default"
        if name != "default":
            raise NotFoundError(f"No such policy exists: {name}")
        text = req["Policy"]
        bypass = bool(req.get("BypassPolicyLockoutSafetyCheck"))

        def change(key: KeyRecord) -> KeyRecord:
            parsed = self.policies.get(text)
            if not bypass:
                self.check_lockout(ctx, parsed, key.arn)
            return key.replace(policy=text)

        self._update_key(ctx, req, "manage", "PutKeyPolicy", change)
        return {}
