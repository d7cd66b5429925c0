"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.kem`.

Operations: Decapsulate, Encapsulate.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class DecapsulateRequest(NamedTuple):
    """Request of ``Decapsulate``."""

    encapsulation_algorithm: str
    key_id: str
    shared_secret_ciphertext_blob: bytes
    dry_run: bool | None = None
    grant_tokens: Sequence[str] | None = None


class DecapsulateResponse(NamedTuple):
    """Response of ``Decapsulate``."""

    encapsulation_algorithm: str | None = None
    key_id: str | None = None
    shared_secret: bytes | None = None


class EncapsulateRequest(NamedTuple):
    """Request of ``Encapsulate``."""

    encapsulation_algorithm: str
    key_id: str
    dry_run: bool | None = None
    grant_tokens: Sequence[str] | None = None


class EncapsulateResponse(NamedTuple):
    """Response of ``Encapsulate``."""

    encapsulation_algorithm: str | None = None
    key_id: str | None = None
    shared_secret: bytes | None = None
    shared_secret_ciphertext_blob: bytes | None = None
