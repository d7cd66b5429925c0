"""Key policies: parse and evaluate the subset of the IAM policy language Strongroom supports.

Pure code: text in, a :class:`KeyPolicy` out; a :class:`Request` in, a :class:`Decision`
out. The supported subset is described in ``docs/policies.md``; anything outside it is
refused with :class:`~strongroom.errors.MalformedPolicyDocumentError` naming what is wrong,
so a policy is never silently evaluated differently from what its author meant.

Evaluation follows AWS: an applicable ``Deny`` statement wins; otherwise an applicable
``Allow`` allows; otherwise nothing does (the caller may still hold a grant). The principal
``arn:aws:iam::<account>:root`` (or the bare account id) stands for every principal of that
account, since Strongroom has no IAM policies to delegate to.
"""

from __future__ import annotations

import enum
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.errors import LimitExceededError, MalformedPolicyDocumentError
from strongroom.kms.authz.conditions import (
    CONDITION_KEYS,
    Condition,
    Request,
    glob_match,
    malformed,
    parse_conditions,
)
from strongroom.kms.authz.principals import Principals, principal_element

__all__ = [
    "CONDITION_KEYS",
    "MAX_POLICY_BYTES",
    "Condition",
    "Decision",
    "KeyPolicy",
    "PolicyCache",
    "Request",
    "Statement",
    "glob_match",
    "parse_policy",
]

MAX_POLICY_BYTES = 32_768
"""AWS's key policy size limit: 32 KiB of UTF-8."""

VERSIONS = ("2012-10-17", "2008-10-17")

_ACTION = re.compile(r"kms:[A-Za-z0-9*?]+", re.IGNORECASE)
_KMS_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:kms:[^:]*:[^:]*:.+")

_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "Condition"}
)


class Decision(enum.Enum):
    """What a key policy says about one request."""

    ALLOW = "Allow"
    DENY = "Deny"
    NONE = "None"


def _strings(value: Any, what: str, where: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise malformed(f"{where}: {what} must be a non-empty string or list of strings.")
    return items


# -- statements and policies --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One parsed statement."""

    effect: Decision
    principals: Principals
    not_principal: bool
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]
    sid: str = ""
    any_action: bool = False
    any_resource: bool = False

    def action_matches(self, action: str) -> bool:
        """Whether the statement's action patterns cover ``kms:<action>``."""
        if self.any_action:
            return True
        name = "kms:" + action.lower()
        return any(glob_match(p, name) for p in self.actions)

    def applies(self, request: Request) -> bool:
        """Whether this statement speaks to ``request``."""
        if self.principals.matches(request.principal_arn, request.account) == self.not_principal:
            return False
        if self.action_matches(request.action) == self.not_action:
            return False
        resource = request.resource
        if not (
            self.any_resource
            or resource is None
            or any(glob_match(r, resource) for r in self.resources)
        ):
            return False
        if not self.conditions:
            return True
        allow = self.effect is Decision.ALLOW
        return all(c.holds(request, allow) for c in self.conditions)


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """A parsed key policy."""

    statements: tuple[Statement, ...]

    def evaluate(self, request: Request) -> Decision:
        """Deny if any applicable statement denies, else allow if one allows, else NONE."""
        allowed = False
        for statement in self.statements:
            if statement.applies(request):
                if statement.effect is Decision.DENY:
                    return Decision.DENY
                allowed = True
        return Decision.ALLOW if allowed else Decision.NONE


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise malformed(f"The policy has the member {name!r} twice in one object.")
        out[name] = value
    return out


def _reject_constant(name: str) -> Any:
    raise malformed(f"The policy is not valid JSON: {name} is not a JSON value.")


def _parse_statement(raw: Any, index: int) -> Statement:
    where = f"Statement {index}"
    if not isinstance(raw, dict):
        raise malformed(f"{where} must be an object.")
    if "NotResource" in raw:
        raise malformed(f"{where}: NotResource is not supported.")
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise malformed(f"{where}: unknown element {unknown[0]!r}.")
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise malformed(f"{where}: Sid must be a string.")
    where = f"Statement {sid!r}" if sid else where
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise malformed(f'{where}: Effect must be "Allow" or "Deny".')
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise malformed(f"{where} must have exactly one of Principal and NotPrincipal.")
    if ("Action" in raw) == ("NotAction" in raw):
        raise malformed(f"{where} must have exactly one of Action and NotAction.")
    if "Resource" not in raw:
        raise malformed(f'{where} has no Resource; use "Resource": "*" for this key.')
    principal = raw["Principal"] if "Principal" in raw else raw["NotPrincipal"]
    actions = _strings(raw.get("Action", raw.get("NotAction")), "Action", where)
    for action in actions:
        if action != "*" and not _ACTION.fullmatch(action):
            raise malformed(f"{where}: {action!r} is not a KMS action (kms:<Operation>).")
    lowered = tuple(a.lower() for a in actions)
    resources = _strings(raw["Resource"], "Resource", where)
    for resource in resources:
        if resource != "*" and not _KMS_ARN.fullmatch(resource):
            raise malformed(f'{where}: Resource {resource!r} is not "*" or a KMS key ARN.')
    return Statement(
        effect=Decision(effect),
        principals=principal_element(principal, where),
        not_principal="NotPrincipal" in raw,
        actions=lowered,
        not_action="NotAction" in raw,
        resources=tuple(resources),
        conditions=parse_conditions(raw["Condition"], where) if "Condition" in raw else (),
        sid=sid,
        any_action=any(a in ("*", "kms:*") for a in lowered),
        any_resource="*" in resources,
    )


def parse_policy(text: str) -> KeyPolicy:
    """Parse and validate a key policy document.

    Raises :class:`LimitExceededError` above 32 KiB and
    :class:`MalformedPolicyDocumentError` (saying what is wrong) for anything else.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise LimitExceededError(
            f"The key policy exceeds the size limit of {MAX_POLICY_BYTES} bytes."
        )
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # duplicate members raise their own error
        raise malformed(f"The policy is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise malformed("The policy must be a JSON object.")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise malformed(f"The policy has an unknown element {unknown[0]!r}.")
    if doc.get("Version", VERSIONS[1]) not in VERSIONS:
        raise malformed(f"Version must be one of {', '.join(VERSIONS)}.")
    if not isinstance(doc.get("Id", ""), str):
        raise malformed("Id must be a string.")
    raw = doc.get("Statement")
    statements = raw if isinstance(raw, list) else [raw]
    if raw is None or not statements:
        raise malformed("The policy has no Statement.")
    return KeyPolicy(tuple(_parse_statement(s, i) for i, s in enumerate(statements, 1)))


_MAX_DECISIONS = 1024
"""Remembered decisions per policy text (all forgotten at once when full)."""


@dataclass(slots=True)
class _Parsed:
    """A policy text parsed once: the policy or its error, and remembered decisions.

    ``decisions`` is ``None`` when the policy has conditions (a decision may then depend
    on the encryption context) and for an unparseable text.
    """

    policy: KeyPolicy | None
    error: MalformedPolicyDocumentError | None
    decisions: dict[tuple[str, str, str, str | None], Decision] | None


class PolicyCache:
    """Parsed policies by their text, bounded (the oldest entries go first), thread-safe.

    Parsing happens once per distinct policy text; a changed key policy is a new text.
    A policy without conditions decides by principal, account, action and resource alone,
    so :meth:`decide` remembers those decisions with the text (Deny and None included).
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._items: OrderedDict[str, _Parsed] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PolicyCache(entries={len(self._items)})"

    def _parsed(self, text: str) -> _Parsed:
        found = self._items.get(text)
        if found is None:
            try:
                policy = parse_policy(text)
            except MalformedPolicyDocumentError as exc:
                found = _Parsed(None, exc, None)
            else:
                conditional = any(st.conditions for st in policy.statements)
                found = _Parsed(policy, None, None if conditional else {})
            with self._lock:
                self._items[text] = found
                while len(self._items) > self._max:
                    self._items.popitem(last=False)
        return found

    def get(self, text: str) -> KeyPolicy:
        """Return the parsed ``text``; raise (and remember) its parse error."""
        found = self._parsed(text)
        if found.policy is None:
            raise MalformedPolicyDocumentError(
                found.error.message if found.error is not None else ""
            )
        return found.policy

    def decide(
        self,
        text: str,
        principal_arn: str,
        account: str,
        action: str,
        resource: str | None,
        encryption_context: Mapping[str, str] | None = None,
    ) -> Decision:
        """What the policy ``text`` says about the request; an unparseable text says NONE.

        The same as ``get(text).evaluate(Request(...))`` with those fields.
        """
        found = self._items.get(text) or self._parsed(text)
        decisions = found.decisions
        if decisions is not None:
            remembered = decisions.get((principal_arn, account, action, resource))
            if remembered is not None:
                return remembered
        if found.policy is None:
            return Decision.NONE
        request = Request(principal_arn, account, action, resource, encryption_context)
        decision = found.policy.evaluate(request)
        if decisions is not None:
            if len(decisions) >= _MAX_DECISIONS:
                decisions.clear()
            decisions[(principal_arn, account, action, resource)] = decision
        return decision
