"""Grants: the stored record, what a grant allows, its constraints.

A grant lets one principal (the grantee) use one key for a list of operations, optionally
only with a given encryption context. It is stored under
``("<account>", "grant", "<key id>/<grant id>")``; grant ids are 64 hex characters.

Grant tokens, which name one grant unforgeably, are :mod:`.grant_tokens`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.crypto.hazmat import (
    random_bytes,
)
from strongroom.errors import ValidationError
from strongroom.kms.keyspec import (
    ENCAPSULATE_DECAPSULATE,
    ENCRYPT_DECRYPT,
    GENERATE_VERIFY_MAC,
    KEY_AGREEMENT,
    SIGN_VERIFY,
    SYMMETRIC_DEFAULT,
)
from strongroom.kms.messages.grants import GrantConstraints, GrantListEntry
from strongroom.kms.records import JsonRecord, KeyRecord

GRANT_ID = re.compile(r"[0-9a-f]{64}")
MAX_GRANTS_PER_KEY = 10_000
"""Strongroom's limit (AWS allows 50,000): authorisation scans a key's grants."""
MAX_CONSTRAINT_PAIRS = 8
MAX_CONSTRAINT_VALUE = 384

GRANT_OPERATIONS = (
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
)
"""The model's ``GrantOperation`` enum."""

CONTEXT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
    }
)
"""Operations that take an encryption context, so grant constraints apply to them."""

_ALWAYS = frozenset({"CreateGrant", "RetireGrant", "DescribeKey"})
_SYMMETRIC = CONTEXT_OPERATIONS
_RSA_ENCRYPT = frozenset({"Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"})
_SIGN = frozenset({"Sign", "Verify", "GetPublicKey"})
_MAC = frozenset({"GenerateMac", "VerifyMac"})
_AGREE = frozenset({"DeriveSharedSecret", "GetPublicKey"})
_KEM = frozenset({"Encapsulate", "Decapsulate", "GetPublicKey"})


def grant_operations_for(key_spec: str, key_usage: str) -> frozenset[str]:
    """The grant operations valid for a key of ``key_spec`` and ``key_usage`` (as AWS)."""
    if key_spec == SYMMETRIC_DEFAULT:
        return _ALWAYS | _SYMMETRIC
    if key_usage == GENERATE_VERIFY_MAC:
        return _ALWAYS | _MAC
    if key_usage == ENCRYPT_DECRYPT:
        return _ALWAYS | _RSA_ENCRYPT
    if key_usage == SIGN_VERIFY:
        return _ALWAYS | _SIGN
    if key_usage == KEY_AGREEMENT:
        return _ALWAYS | _AGREE
    if key_usage == ENCAPSULATE_DECAPSULATE:
        return _ALWAYS | _KEM
    return _ALWAYS


def check_grant_fits(key: KeyRecord, grant: GrantRecord) -> None:
    """Refuse operations the key cannot do, and constraints on keys without a context."""
    allowed = grant_operations_for(key.key_spec, key.key_usage)
    bad = [op for op in grant.operations if op not in allowed]
    if bad:
        raise ValidationError(
            f"Grant operations {', '.join(bad)} are not valid for {key.arn}, whose key "
            f"spec is {key.key_spec} and key usage {key.key_usage}."
        )
    constrained = grant.context_equals is not None or grant.context_subset is not None
    if constrained and key.key_spec != SYMMETRIC_DEFAULT:
        raise ValidationError(
            "Encryption context grant constraints are only valid for symmetric "
            f"encryption keys; {key.arn} has key spec {key.key_spec}."
        )


def check_constraint(pairs: Any, name: str) -> dict[str, str] | None:
    """Validate one constraint map (at most 8 pairs, values up to 384 characters)."""
    if pairs is None:
        return None
    if not isinstance(pairs, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()
    ):
        raise ValidationError(f"{name} must map strings to strings.")
    if len(pairs) > MAX_CONSTRAINT_PAIRS:
        raise ValidationError(
            f"{name} can have at most {MAX_CONSTRAINT_PAIRS} encryption context pairs."
        )
    if any(len(v) > MAX_CONSTRAINT_VALUE for v in pairs.values()):
        raise ValidationError(f"{name} values can have at most {MAX_CONSTRAINT_VALUE} characters.")
    return dict(pairs)


def _folded(pairs: Mapping[str, str]) -> list[tuple[str, str]]:
    """Pairs with keys case-folded (grant constraints compare keys case-insensitively)."""
    return sorted((k.lower(), v) for k, v in pairs.items())


def context_matches(
    equals: Mapping[str, str] | None,
    subset: Mapping[str, str] | None,
    context: Mapping[str, str] | None,
) -> bool:
    """Whether a request's encryption context satisfies grant constraints.

    ``EncryptionContextEquals``: the same pairs, no more, no fewer. ``...Subset``: every
    constraint pair is in the request. Keys compare case-insensitively, values exactly.
    """
    request = _folded(context or {})
    if equals is not None and _folded(equals) != request:
        return False
    return subset is None or set(_folded(subset)) <= set(request)


def at_least_as_strict(
    child_equals: Mapping[str, str] | None,
    child_subset: Mapping[str, str] | None,
    parent_equals: Mapping[str, str] | None,
    parent_subset: Mapping[str, str] | None,
) -> bool:
    """Whether constraints of a grant made through a grant are as strict as its parent's.

    Every encryption context the child accepts must also be accepted by the parent.
    """
    if parent_equals is not None and (
        child_equals is None or _folded(child_equals) != _folded(parent_equals)
    ):
        return False
    if parent_subset is not None:
        needed = set(_folded(parent_subset))
        if child_equals is not None:
            return needed <= set(_folded(child_equals))
        return child_subset is not None and needed <= set(_folded(child_subset))
    return True


@dataclass(frozen=True, slots=True)
class GrantRecord(JsonRecord):
    """One grant on one key (its tokens' key is derived from the store secret, not kept here)."""

    grant_id: str
    key_id: str
    account_id: str
    grantee_principal: str
    operations: tuple[str, ...]
    creation_date: float
    retiring_principal: str | None = None
    name: str | None = None
    context_equals: tuple[tuple[str, str], ...] | None = None
    context_subset: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        # Constraints are stored as pair lists, never as JSON objects: a record's JSON
        # object with the single member "$b64" would read back as bytes.
        object.__setattr__(self, "operations", tuple(self.operations))
        for name in ("context_equals", "context_subset"):
            pairs = getattr(self, name)
            if pairs is not None:
                if isinstance(pairs, Mapping):
                    pairs = pairs.items()
                object.__setattr__(self, name, tuple((str(k), str(v)) for k, v in pairs))

    @property
    def equals(self) -> dict[str, str] | None:
        """The ``EncryptionContextEquals`` constraint, if any."""
        return None if self.context_equals is None else dict(self.context_equals)

    @property
    def subset(self) -> dict[str, str] | None:
        """The ``EncryptionContextSubset`` constraint, if any."""
        return None if self.context_subset is None else dict(self.context_subset)

    def __repr__(self) -> str:
        return (
            f"GrantRecord(grant_id={self.grant_id!r}, key_id={self.key_id!r}, "
            f"grantee={self.grantee_principal!r}, operations={list(self.operations)!r})"
        )

    @property
    def store_name(self) -> str:
        """``<key id>/<grant id>``: the record's name in the store."""
        return f"{self.key_id}/{self.grant_id}"

    def permits(self, operation: str, context: Mapping[str, str] | None) -> bool:
        """Whether this grant allows ``operation`` with encryption context ``context``."""
        if operation not in self.operations:
            return False
        if operation not in CONTEXT_OPERATIONS:
            return True
        return context_matches(self.equals, self.subset, context)

    def same_as(self, other: GrantRecord) -> bool:
        """Whether ``other`` asks for this very grant (a retried named ``CreateGrant``)."""
        return (
            self.name == other.name
            and self.grantee_principal == other.grantee_principal
            and self.retiring_principal == other.retiring_principal
            and sorted(self.operations) == sorted(other.operations)
            and self.equals == other.equals
            and self.subset == other.subset
        )

    def list_entry(self, key_arn: str) -> GrantListEntry:
        """The grant as ``ListGrants`` shows it (``GrantListEntry``)."""
        constrained = self.context_equals is not None or self.context_subset is not None
        return GrantListEntry(
            constraints=GrantConstraints(
                encryption_context_equals=self.equals, encryption_context_subset=self.subset
            )
            if constrained
            else None,
            creation_date=self.creation_date,
            grant_id=self.grant_id,
            grantee_principal=self.grantee_principal,
            issuing_account=f"arn:aws:iam::{self.account_id}:root",
            key_id=key_arn,
            name=self.name,
            operations=self.operations,
            retiring_principal=self.retiring_principal,
        )


def new_grant_id() -> str:
    """A fresh grant id: 64 lower-case hex characters."""
    return random_bytes(32).hex()
