"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.grants`.

Operations: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple


class CreateGrantRequest(NamedTuple):
    """Request of ``CreateGrant``."""

    key_id: str
    operations: Sequence[str]
    constraints: GrantConstraints | None = None
    dry_run: bool | None = None
    grant_tokens: Sequence[str] | None = None
    grantee_principal: str | None = None
    grantee_service_principal: str | None = None
    name: str | None = None
    retiring_principal: str | None = None
    retiring_service_principal: str | None = None


class CreateGrantResponse(NamedTuple):
    """Response of ``CreateGrant``."""

    grant_id: str | None = None
    grant_token: str | None = None


class ListGrantsRequest(NamedTuple):
    """Request of ``ListGrants``."""

    key_id: str
    grant_id: str | None = None
    grantee_principal: str | None = None
    grantee_service_principal: str | None = None
    limit: int | None = None
    marker: str | None = None


class ListGrantsResponse(NamedTuple):
    """Response of ``ListGrants``."""

    grants: Sequence[GrantListEntry] | None = None
    next_marker: str | None = None
    truncated: bool | None = None


class ListRetirableGrantsRequest(NamedTuple):
    """Request of ``ListRetirableGrants``."""

    limit: int | None = None
    marker: str | None = None
    retiring_principal: str | None = None
    retiring_service_principal: str | None = None


class RetireGrantRequest(NamedTuple):
    """Request of ``RetireGrant``."""

    dry_run: bool | None = None
    grant_id: str | None = None
    grant_token: str | None = None
    key_id: str | None = None


class RevokeGrantRequest(NamedTuple):
    """Request of ``RevokeGrant``."""

    grant_id: str
    key_id: str
    dry_run: bool | None = None


class GrantConstraints(NamedTuple):
    """Shape ``GrantConstraints`` of the model."""

    encryption_context_equals: Mapping[str, str] | None = None
    encryption_context_subset: Mapping[str, str] | None = None
    source_arn: str | None = None


class GrantListEntry(NamedTuple):
    """Shape ``GrantListEntry`` of the model."""

    constraints: GrantConstraints | None = None
    creation_date: float | None = None
    grant_id: str | None = None
    grantee_principal: str | None = None
    grantee_service_principal: str | None = None
    issuing_account: str | None = None
    key_id: str | None = None
    name: str | None = None
    operations: Sequence[str] | None = None
    retiring_principal: str | None = None
    retiring_service_principal: str | None = None
