"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.mac`.

Operations: GenerateMac, VerifyMac.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class GenerateMacRequest(NamedTuple):
    """Request of ``GenerateMac``."""

    key_id: str
    mac_algorithm: str
    message: bytes
    dry_run: bool | None = None
    grant_tokens: Sequence[str] | None = None


class GenerateMacResponse(NamedTuple):
    """Response of ``GenerateMac``."""

    key_id: str | None = None
    mac: bytes | None = None
    mac_algorithm: str | None = None


class VerifyMacRequest(NamedTuple):
    """Request of ``VerifyMac``."""

    key_id: str
    mac: bytes
    mac_algorithm: str
    message: bytes
    dry_run: bool | None = None
    grant_tokens: Sequence[str] | None = None


class VerifyMacResponse(NamedTuple):
    """Response of ``VerifyMac``."""

    key_id: str | None = None
    mac_algorithm: str | None = None
    mac_valid: bool | None = None
