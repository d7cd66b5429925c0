"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.policy`.

Operations: GetKeyPolicy, ListKeyPolicies, PutKeyPolicy.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class GetKeyPolicyRequest(NamedTuple):
    """Request of ``GetKeyPolicy``."""

    key_id: str
    policy_name: str | None = None


class GetKeyPolicyResponse(NamedTuple):
    """Response of ``GetKeyPolicy``."""

    policy: str | None = None
    policy_name: str | None = None


class ListKeyPoliciesRequest(NamedTuple):
    """Request of ``ListKeyPolicies``."""

    key_id: str
    limit: int | None = None
    marker: str | None = None


class ListKeyPoliciesResponse(NamedTuple):
    """Response of ``ListKeyPolicies``."""

    next_marker: str | None = None
    policy_names: Sequence[str] | None = None
    truncated: bool | None = None


class PutKeyPolicyRequest(NamedTuple):
    """Request of ``PutKeyPolicy``."""

    key_id: str
    policy: str
    bypass_policy_lockout_safety_check: bool | None = None
    policy_name: str | None = None
