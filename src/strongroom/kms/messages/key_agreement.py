"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.key_agreement`.

Operations: DeriveSharedSecret.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from strongroom.kms.messages.shared import RecipientInfo


class DeriveSharedSecretRequest(NamedTuple):
    """Request of ``DeriveSharedSecret``."""

    key_agreement_algorithm: str
    key_id: str
    public_key: bytes
    dry_run: bool | None = None
    grant_tokens: Sequence[str] | None = None
    recipient: RecipientInfo | None = None


class DeriveSharedSecretResponse(NamedTuple):
    """Response of ``DeriveSharedSecret``."""

    ciphertext_for_recipient: bytes | None = None
    key_agreement_algorithm: str | None = None
    key_id: str | None = None
    key_origin: str | None = None
    shared_secret: bytes | None = None
