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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from strongroom.errors import LimitExceededError, MalformedPolicyDocumentError
from strongroom.kms.principals import Principals, principal_element

MAX_POLICY_BYTES = 32_768
"""AWS's key policy size limit: 32 KiB of UTF-8."""

VERSIONS = ("2012-10-17", "2008-10-17")

_ACTION = re.compile(r"kms:[A-Za-z0-9*?]+", re.IGNORECASE)
_KMS_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:kms:[^:]*:[^:]*:.+")

_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "Condition"}
)
_EC_PREFIX = "kms:encryptioncontext:"
CONDITION_KEYS = frozenset(
    {
        "kms:encryptioncontextkeys",
        "kms:calleraccount",
        "aws:principalaccount",
        "aws:principalarn",
        "kms:viaservice",
        "kms:grantisforawsresource",
        "kms:granteeprincipal",
        "kms:retiringprincipal",
        "kms:grantoperations",
    }
)
"""Condition keys (lower case) besides ``kms:EncryptionContext:<key>``."""


_NO_CONTEXT: Mapping[str, tuple[str, ...]] = MappingProxyType({})


class Decision(enum.Enum):
    """What a key policy says about one request."""

    ALLOW = "Allow"
    DENY = "Deny"
    NONE = "None"


@dataclass(frozen=True, slots=True)
class Request:
    """One authorisation question: who asks for which action on which key, in which context.

    ``action`` is the bare operation name (``Decrypt``); ``resource`` the key ARN, or
    ``None`` to match any ``Resource`` (a key that does not exist yet). ``context`` holds
    further condition keys by lower-case name (``kms:granteeprincipal``...).
    """

    principal_arn: str
    account: str
    action: str
    resource: str | None
    encryption_context: Mapping[str, str] | None = None
    context: Mapping[str, tuple[str, ...]] | None = None


def glob_match(pattern: str, text: str) -> bool:
    """IAM wildcard match: ``*`` is any run of characters, ``?`` any one character.

    Linear-time two-pointer matching, so a hostile pattern cannot make it backtrack.
    """
    p = t = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _malformed(message: str) -> MalformedPolicyDocumentError:
    return MalformedPolicyDocumentError(message)


def _strings(value: Any, what: str, where: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise _malformed(f"{where}: {what} must be a non-empty string or list of strings.")
    return items


# -- conditions ---------------------------------------------------------------------------

_TESTS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.casefold() == v.casefold(),
    "StringLike": glob_match,
    "ArnEquals": glob_match,
    "ArnLike": glob_match,
    "Bool": lambda p, v: p == v.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``operator: {key: values}`` test of a statement's ``Condition`` block."""

    test: str
    negated: bool
    key: str
    values: tuple[str, ...]
    set_op: str | None = None
    if_exists: bool = False

    def holds(self, request: Request, allow: bool) -> bool:
        """Evaluate against ``request``; ``allow`` picks the safe reading of many values.

        A single-valued operator facing several request values (encryption context keys
        that differ only by case) must hold for all of them in an Allow statement and for
        any of them in a Deny statement.
        """
        found = _lookup(self.key, request)
        if self.test == "Null":
            return (not found) == (self.values[0] == "true")
        if not found:
            if self.set_op == "all":
                return True
            return self.if_exists or (self.negated and self.set_op is None)
        test = _TESTS[self.test]
        results = [any(test(p, v) for p in self.values) != self.negated for v in found]
        if self.set_op == "any" or (self.set_op is None and not allow):
            return any(results)
        return all(results)


def _lookup(key: str, request: Request) -> tuple[str, ...]:
    context = request.encryption_context or {}
    if key.startswith(_EC_PREFIX):
        name = key[len(_EC_PREFIX) :]
        return tuple(v for k, v in context.items() if k.lower() == name)
    if key == "kms:encryptioncontextkeys":
        return tuple(context)
    if key in ("kms:calleraccount", "aws:principalaccount"):
        return (request.account,)
    if key == "aws:principalarn":
        return (request.principal_arn,)
    return (request.context or _NO_CONTEXT).get(key, ())


def _condition_values(raw: Any, where: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise _malformed(f"{where}: condition values must be strings, numbers or booleans.")
    if not out:
        raise _malformed(f"{where}: a condition needs at least one value.")
    return tuple(out)


def _parse_conditions(block: Any, where: str) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise _malformed(f"{where}: Condition must be an object.")
    out = []
    for operator, tests in block.items():
        if not isinstance(operator, str) or not isinstance(tests, dict) or not tests:
            raise _malformed(f"{where}: Condition {operator!r} must map condition keys to values.")
        set_op, name = None, operator
        for prefix, op in (("ForAnyValue:", "any"), ("ForAllValues:", "all")):
            if name.startswith(prefix):
                set_op, name = op, name[len(prefix) :]
        if_exists = name.endswith("IfExists") and name != "IfExists"
        name = name.removesuffix("IfExists") if if_exists else name
        base = _NEGATED.get(name, name)
        if (base not in _TESTS and name != "Null") or (name == "Null" and (if_exists or set_op)):
            raise _malformed(f"{where}: condition operator {operator!r} is not supported.")
        for key, raw in tests.items():
            lowered = str(key).lower()
            if lowered not in CONDITION_KEYS and (
                not lowered.startswith(_EC_PREFIX) or lowered == _EC_PREFIX
            ):
                raise _malformed(f"{where}: condition key {key!r} is not supported.")
            values = _condition_values(raw, where)
            if name in ("Null", "Bool"):
                values = tuple(v.lower() for v in values)
                if any(v not in ("true", "false") for v in values):
                    raise _malformed(f"{where}: {name} takes the values true or false.")
            out.append(Condition(base, name in _NEGATED, lowered, values, set_op, if_exists))
    return tuple(out)


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
            raise _malformed(f"The policy has the member {name!r} twice in one object.")
        out[name] = value
    return out


def _reject_constant(name: str) -> Any:
    raise _malformed(f"The policy is not valid JSON: {name} is not a JSON value.")


def _parse_statement(raw: Any, index: int) -> Statement:
    where = f"Statement {index}"
    if not isinstance(raw, dict):
        raise _malformed(f"{where} must be an object.")
    if "NotResource" in raw:
        raise _malformed(f"{where}: NotResource is not supported.")
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise _malformed(f"{where}: unknown element {unknown[0]!r}.")
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise _malformed(f"{where}: Sid must be a string.")
    where = f"Statement {sid!r}" if sid else where
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _malformed(f'{where}: Effect must be "Allow" or "Deny".')
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise _malformed(f"{where} must have exactly one of Principal and NotPrincipal.")
    if ("Action" in raw) == ("NotAction" in raw):
        raise _malformed(f"{where} must have exactly one of Action and NotAction.")
    if "Resource" not in raw:
        raise _malformed(f'{where} has no Resource; use "Resource": "*" for this key.')
    principal = raw["Principal"] if "Principal" in raw else raw["NotPrincipal"]
    actions = _strings(raw.get("Action", raw.get("NotAction")), "Action", where)
    for action in actions:
        if action != "*" and not _ACTION.fullmatch(action):
            raise _malformed(f"{where}: {action!r} is not a KMS action (kms:<Operation>).")
    lowered = tuple(a.lower() for a in actions)
    resources = _strings(raw["Resource"], "Resource", where)
    for resource in resources:
        if resource != "*" and not _KMS_ARN.fullmatch(resource):
            raise _malformed(f'{where}: Resource {resource!r} is not "*" or a KMS key ARN.')
    return Statement(
        effect=Decision(effect),
        principals=principal_element(principal, where),
        not_principal="NotPrincipal" in raw,
        actions=lowered,
        not_action="NotAction" in raw,
        resources=tuple(resources),
        conditions=_parse_conditions(raw["Condition"], where) if "Condition" in raw else (),
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
        raise _malformed(f"The policy is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise _malformed("The policy must be a JSON object.")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise _malformed(f"The policy has an unknown element {unknown[0]!r}.")
    if doc.get("Version", VERSIONS[1]) not in VERSIONS:
        raise _malformed(f"Version must be one of {', '.join(VERSIONS)}.")
    if not isinstance(doc.get("Id", ""), str):
        raise _malformed("Id must be a string.")
    raw = doc.get("Statement")
    statements = raw if isinstance(raw, list) else [raw]
    if raw is None or not statements:
        raise _malformed("The policy has no Statement.")
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
