"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.asymmetric`.

Operations: GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, GetPublicKey, Sign,
Verify.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from strongroom.kms.messages.shared import RecipientInfo


class GenerateDataKeyPairRequest(NamedTuple):
    """Request of ``GenerateDataKeyPair``."""

    key_id: str
    key_pair_spec: str
    dry_run: bool | None = None
    encryption_context: Mapping[str, str] | None = None
    grant_tokens: Sequence[str] | None = None
    recipient: RecipientInfo | None = None


class GenerateDataKeyPairResponse(NamedTuple):
    """Response of ``GenerateDataKeyPair``."""

    ciphertext_for_recipient: bytes | None = None
    key_id: str | None = None
    key_material_id: str | None = None
    key_pair_spec: str | None = None
    private_key_ciphertext_blob: bytes | None = None
    private_key_plaintext: bytes | None = None
    public_key: bytes | None = None


class GenerateDataKeyPairWithoutPlaintextRequest(NamedTuple):
    """Request of ``GenerateDataKeyPairWithoutPlaintext``."""

    key_id: str
    key_pair_spec: str
    dry_run: bool | None = None
    encryption_context: Mapping[str, str] | None = None
    grant_tokens: Sequence[str] | None = None


class GenerateDataKeyPairWithoutPlaintextResponse(NamedTuple):
    """Response of ``GenerateDataKeyPairWithoutPlaintext``."""

    key_id: str | None = None
    key_material_id: str | None = None
    key_pair_spec: str | None = None
    private_key_ciphertext_blob: bytes | None = None
    public_key: bytes | None = None


class GetPublicKeyRequest(NamedTuple):
    """Request of ``GetPublicKey``."""

    key_id: str
    grant_tokens: Sequence[str] | None = None


class GetPublicKeyResponse(NamedTuple):
    """Response of ``GetPublicKey``."""

    customer_master_key_spec: str | None = None
    encapsulation_algorithms: Sequence[str] | None = None
    encryption_algorithms: Sequence[str] | None = None
    key_agreement_algorithms: Sequence[str] | None = None
    key_id: str | None = None
    key_spec: str | None = None
    key_usage: str | None = None
    public_key: bytes | None = None
    signing_algorithms: Sequence[str] | None = None


class SignRequest(NamedTuple):
    """Request of ``Sign``."""

    key_id: str
    message: bytes
    signing_algorithm: str
    dry_run: bool | None = None
    grant_tokens: Sequence[str] | None = None
    message_type: str | None = None


class SignResponse(NamedTuple):
    """Response of ``Sign``."""

    key_id: str | None = None
    signature: bytes | None = None
    signing_algorithm: str | None = None


class VerifyRequest(NamedTuple):
    """Request of ``Verify``."""

    key_id: str
    message: bytes
    signature: bytes
    signing_algorithm: str
    dry_run: bool | None = None
    grant_tokens: Sequence[str] | None = None
    message_type: str | None = None


class VerifyResponse(NamedTuple):
    """Response of ``Verify``."""

    key_id: str | None = None
    signature_valid: bool | None = None
    signing_algorithm: str | None = None
