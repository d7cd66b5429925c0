"""Principals as key policies and grants name them, and whether one names a caller.

Understood: ``*``; a 12-digit account id or ``arn:aws:iam::<account>:root``, both meaning
every principal of that account (Strongroom has no IAM policies to delegate to);
``arn:aws:iam::<account>:user/<path/name>`` and ``...:role/<path/name>`` (a role also
covers its sessions ``arn:aws:sts::<account>:assumed-role/<role>/<session>``); and such
session ARNs themselves. Wildcards are not allowed in principals, as in AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from strongroom.errors import MalformedPolicyDocumentError

INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."
SERVICE_PRINCIPAL = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?")
"""An AWS service principal (``logs.amazonaws.com``): accepted in policies, never a caller."""

_ACCOUNT = re.compile(r"\d{12}")
_NAME = r"[\w+=,.@-]+"
_IAM_ARN = re.compile(
    rf"arn:aws(?:-[a-z]+)*:iam::(\d{{12}}):(root|user/(?:{_NAME}/)*{_NAME}|"
    rf"role/(?:{_NAME}/)*({_NAME}))"
)
_STS_ARN = re.compile(rf"arn:aws(?:-[a-z]+)*:sts::(\d{{12}}):assumed-role/({_NAME})/{_NAME}")


@dataclass(frozen=True, slots=True)
class Principals:
    """A set of principals: everyone, whole accounts, exact ARNs, or roles' sessions."""

    everyone: bool = False
    accounts: frozenset[str] = frozenset()
    arns: frozenset[str] = frozenset()
    roles: frozenset[tuple[str, str]] = frozenset()

    def matches(self, principal_arn: str, account: str) -> bool:
        """Whether the caller ``principal_arn`` of ``account`` is in the set."""
        if self.everyone or account in self.accounts or principal_arn in self.arns:
            return True
        if self.roles:
            session = _STS_ARN.fullmatch(principal_arn)
            return session is not None and (session[1], session[2]) in self.roles
        return False


def principal_set(values: list[str]) -> Principals:
    """Build a :class:`Principals` from principal strings.

    Raises :class:`MalformedPolicyDocumentError` (AWS's wording) if one is not valid.
    """
    everyone, accounts, arns, roles = False, set(), set(), set()
    for value in values:
        if value == "*":
            everyone = True
        elif _ACCOUNT.fullmatch(value):
            accounts.add(value)
        elif (iam := _IAM_ARN.fullmatch(value)) is not None:
            if iam[2] == "root":
                accounts.add(iam[1])
            else:
                arns.add(value)
                if iam[3] is not None:
                    roles.add((iam[1], iam[3]))
        elif _STS_ARN.fullmatch(value):
            arns.add(value)
        else:
            raise MalformedPolicyDocumentError(INVALID_PRINCIPALS)
    return Principals(everyone, frozenset(accounts), frozenset(arns), frozenset(roles))


def principal_covers(principal: str, principal_arn: str, account: str) -> bool:
    """Whether one principal string (a grantee, a retiring principal) names the caller.

    An account root or account id covers every principal of that account; ``*`` and
    unparseable strings cover nobody.
    """
    if principal == principal_arn:
        return True
    try:
        found = principal_set([principal])
    except MalformedPolicyDocumentError:
        return False
    return not found.everyone and found.matches(principal_arn, account)


def valid_principal(principal: str) -> bool:
    """Whether ``principal`` is an account, user, role or session principal (not ``*``)."""
    if principal == "*":
        return False
    try:
        principal_set([principal])
    except MalformedPolicyDocumentError:
        return False
    return True


def principal_element(value: Any, where: str) -> Principals:
    """Parse a policy statement's ``Principal`` (or ``NotPrincipal``) element.

    ``"*"``, or an object with ``AWS`` and/or ``Service`` members, each a string or a list
    of strings. Service principals are accepted but never match a caller.
    """
    if value == "*":
        return Principals(everyone=True)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicyDocumentError(
            f'{where}: Principal must be "*" or an object such as {{"AWS": ...}}.'
        )
    found = Principals()
    for kind, entries in value.items():
        items = entries if isinstance(entries, list) else [entries]
        if not items or not all(isinstance(v, str) and v for v in items):
            raise MalformedPolicyDocumentError(
                f"{where}: a principal must be a non-empty string or list of strings."
            )
        if kind == "AWS":
            found = principal_set(items)
        elif kind == "Service":
            if not all(SERVICE_PRINCIPAL.fullmatch(s) for s in items):
                raise MalformedPolicyDocumentError(INVALID_PRINCIPALS)
        else:
            raise MalformedPolicyDocumentError(
                f"{where}: principal type {kind!r} is not supported (AWS, Service)."
            )
    return found
