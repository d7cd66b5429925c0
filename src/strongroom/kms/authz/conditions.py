"""Conditions of key policy statements: parsing, and evaluation against a :class:`Request`.

Pure code, used by :mod:`strongroom.kms.authz.policy`. The operators (``StringEquals``,
``StringLike``, ``ArnLike``, ``Bool``, ``Null``, their negations, ``...IfExists`` and the
``ForAnyValue:``/``ForAllValues:`` set forms) and condition keys supported are listed in
``docs/policies.md``; anything else is a :class:`~strongroom.errors.MalformedPolicyDocumentError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from strongroom.errors import MalformedPolicyDocumentError

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


def malformed(message: str) -> MalformedPolicyDocumentError:
    """The error for a policy document Strongroom will not evaluate."""
    return MalformedPolicyDocumentError(message)


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
            raise malformed(f"{where}: condition values must be strings, numbers or booleans.")
    if not out:
        raise malformed(f"{where}: a condition needs at least one value.")
    return tuple(out)


def parse_conditions(block: Any, where: str) -> tuple[Condition, ...]:
    """Parse a statement's ``Condition`` block (``where`` names it in errors)."""
    if not isinstance(block, dict):
        raise malformed(f"{where}: Condition must be an object.")
    out = []
    for operator, tests in block.items():
        if not isinstance(operator, str) or not isinstance(tests, dict) or not tests:
            raise malformed(f"{where}: Condition {operator!r} must map condition keys to values.")
        set_op, name = None, operator
        for prefix, op in (("ForAnyValue:", "any"), ("ForAllValues:", "all")):
            if name.startswith(prefix):
                set_op, name = op, name[len(prefix) :]
        if_exists = name.endswith("IfExists") and name != "IfExists"
        name = name.removesuffix("IfExists") if if_exists else name
        base = _NEGATED.get(name, name)
        if (base not in _TESTS and name != "Null") or (name == "Null" and (if_exists or set_op)):
            raise malformed(f"{where}: condition operator {operator!r} is not supported.")
        for key, raw in tests.items():
            lowered = str(key).lower()
            if lowered not in CONDITION_KEYS and (
                not lowered.startswith(_EC_PREFIX) or lowered == _EC_PREFIX
            ):
                raise malformed(f"{where}: condition key {key!r} is not supported.")
            values = _condition_values(raw, where)
            if name in ("Null", "Bool"):
                values = tuple(v.lower() for v in values)
                if any(v not in ("true", "false") for v in values):
                    raise malformed(f"{where}: {name} takes the values true or false.")
            out.append(Condition(base, name in _NEGATED, lowered, values, set_op, if_exists))
    return tuple(out)
