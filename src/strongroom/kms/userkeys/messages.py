"""Messages of the user-key operations (target ``StrongroomUserKeys``).

Generated from ``kms/strongroom-userkeys-2024-06-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


class CountUserKeysRequest(NamedTuple):
    """Request of ``CountUserKeys``."""

    key_id: str


class CountUserKeysResponse(NamedTuple):
    """Response of ``CountUserKeys``."""

    key_id: str | None = None
    count_: int | None = None


class CreateUserKeysRequest(NamedTuple):
    """Request of ``CreateUserKeys``."""

    key_id: str
    user_ids: Sequence[str]
    dry_run: bool | None = None


class CreateUserKeysResponse(NamedTuple):
    """Response of ``CreateUserKeys``."""

    key_id: str | None = None
    created: int | None = None


class DescribeUserKeyRequest(NamedTuple):
    """Request of ``DescribeUserKey``."""

    key_id: str
    user_id: str


class DescribeUserKeyResponse(NamedTuple):
    """Response of ``DescribeUserKey``."""

    key_id: str | None = None
    exists: bool | None = None


class DestroyUserKeyRequest(NamedTuple):
    """Request of ``DestroyUserKey``."""

    key_id: str
    user_id: str
    dry_run: bool | None = None


class DestroyUserKeyResponse(NamedTuple):
    """Response of ``DestroyUserKey``."""

    key_id: str | None = None
    destroyed: bool | None = None


class EncryptForUserRequest(NamedTuple):
    """Request of ``EncryptForUser``."""

    key_id: str
    user_id: str
    plaintext: bytes
    encryption_context: Mapping[str, str] | None = None
    dry_run: bool | None = None


class EncryptForUserResponse(NamedTuple):
    """Response of ``EncryptForUser``."""

    ciphertext_blob: bytes | None = None
    key_id: str | None = None


class GenerateUserDataKeyRequest(NamedTuple):
    """Request of ``GenerateUserDataKey``."""

    key_id: str
    user_id: str
    encryption_context: Mapping[str, str] | None = None
    number_of_bytes: int | None = None
    dry_run: bool | None = None


class GenerateUserDataKeyResponse(NamedTuple):
    """Response of ``GenerateUserDataKey``."""

    ciphertext_blob: bytes | None = None
    plaintext: bytes | None = None
    key_id: str | None = None


class UserKeyExistsRequest(NamedTuple):
    """Request of ``UserKeyExists``."""

    key_id: str
    user_id: str


class UserKeyExistsResponse(NamedTuple):
    """Response of ``UserKeyExists``."""

    key_id: str | None = None
    exists: bool | None = None


SHAPES: dict[str, type[tuple[Any, ...]]] = {
    "CountUserKeysRequest": CountUserKeysRequest,
    "CountUserKeysResponse": CountUserKeysResponse,
    "CreateUserKeysRequest": CreateUserKeysRequest,
    "CreateUserKeysResponse": CreateUserKeysResponse,
    "DescribeUserKeyRequest": DescribeUserKeyRequest,
    "DescribeUserKeyResponse": DescribeUserKeyResponse,
    "DestroyUserKeyRequest": DestroyUserKeyRequest,
    "DestroyUserKeyResponse": DestroyUserKeyResponse,
    "EncryptForUserRequest": EncryptForUserRequest,
    "EncryptForUserResponse": EncryptForUserResponse,
    "GenerateUserDataKeyRequest": GenerateUserDataKeyRequest,
    "GenerateUserDataKeyResponse": GenerateUserDataKeyResponse,
    "UserKeyExistsRequest": UserKeyExistsRequest,
    "UserKeyExistsResponse": UserKeyExistsResponse,
}
"""Every generated message class, by its shape name in the model."""
