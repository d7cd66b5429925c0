"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.crypto`.

Operations: Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateRandom,
ReEncrypt.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from strongroom.kms.messages.shared import RecipientInfo


class DecryptRequest(NamedTuple):
    """Request of ``Decrypt``."""

    ciphertext_blob: bytes | None = None
    dry_run: bool | None = None
    dry_run_modifiers: Sequence[str] | None = None
    encryption_algorithm: str | None = None
    encryption_context: Mapping[str, str] | None = None
    grant_tokens: Sequence[str] | None = None
    key_id: str | None = None
    recipient: RecipientInfo | None = None


class DecryptResponse(NamedTuple):
    """Response of ``Decrypt``."""

    ciphertext_for_recipient: bytes | None = None
    encryption_algorithm: str | None = None
    key_id: str | None = None
    key_material_id: str | None = None
    plaintext: bytes | None = None


class EncryptRequest(NamedTuple):
    """Request of ``Encrypt``."""

    key_id: str
    plaintext: bytes
    dry_run: bool | None = None
    encryption_algorithm: str | None = None
    encryption_context: Mapping[str, str] | None = None
    grant_tokens: Sequence[str] | None = None


class EncryptResponse(NamedTuple):
    """Response of ``Encrypt``."""

    ciphertext_blob: bytes | None = None
    encryption_algorithm: str | None = None
    key_id: str | None = None


class GenerateDataKeyRequest(NamedTuple):
    """Request of ``GenerateDataKey``."""

    key_id: str
    dry_run: bool | None = None
    encryption_context: Mapping[str, str] | None = None
    grant_tokens: Sequence[str] | None = None
    key_spec: str | None = None
    number_of_bytes: int | None = None
    recipient: RecipientInfo | None = None


class GenerateDataKeyResponse(NamedTuple):
    """Response of ``GenerateDataKey``."""

    ciphertext_blob: bytes | None = None
    ciphertext_for_recipient: bytes | None = None
    key_id: str | None = None
    key_material_id: str | None = None
    plaintext: bytes | None = None


class GenerateDataKeyWithoutPlaintextRequest(NamedTuple):
    """Request of ``GenerateDataKeyWithoutPlaintext``."""

    key_id: str
    dry_run: bool | None = None
    encryption_context: Mapping[str, str] | None = None
    grant_tokens: Sequence[str] | None = None
    key_spec: str | None = None
    number_of_bytes: int | None = None


class GenerateDataKeyWithoutPlaintextResponse(NamedTuple):
    """Response of ``GenerateDataKeyWithoutPlaintext``."""

    ciphertext_blob: bytes | None = None
    key_id: str | None = None
    key_material_id: str | None = None


class GenerateRandomRequest(NamedTuple):
    """Request of ``GenerateRandom``."""

    custom_key_store_id: str | None = None
    number_of_bytes: int | None = None
    recipient: RecipientInfo | None = None


class GenerateRandomResponse(NamedTuple):
    """Response of ``GenerateRandom``."""

    ciphertext_for_recipient: bytes | None = None
    plaintext: bytes | None = None


class ReEncryptRequest(NamedTuple):
    """Request of ``ReEncrypt``."""

    destination_key_id: str
    ciphertext_blob: bytes | None = None
    destination_encryption_algorithm: str | None = None
    destination_encryption_context: Mapping[str, str] | None = None
    dry_run: bool | None = None
    dry_run_modifiers: Sequence[str] | None = None
    grant_tokens: Sequence[str] | None = None
    source_encryption_algorithm: str | None = None
    source_encryption_context: Mapping[str, str] | None = None
    source_key_id: str | None = None


class ReEncryptResponse(NamedTuple):
    """Response of ``ReEncrypt``."""

    ciphertext_blob: bytes | None = None
    destination_encryption_algorithm: str | None = None
    destination_key_material_id: str | None = None
    key_id: str | None = None
    source_encryption_algorithm: str | None = None
    source_key_id: str | None = None
    source_key_material_id: str | None = None
