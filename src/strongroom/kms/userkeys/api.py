"""User keys over the API: Strongroom's own operations beside the AWS ones, one entry point.

The HTTP API serves them on the KMS endpoint with their own target prefix
(``X-Amz-Target: StrongroomUserKeys.<Operation>``), same protocol (AWS JSON 1.1), same
signing (SigV4, service ``kms``), same errors and tenancy as the AWS operations. The
operations, members and limits are in ``strongroom-userkeys-2024-06-01.json`` beside this
module, a service model in botocore's format (the AWS model is left untouched):

=====================  ===========================================  =====================
operation              request -> response                          policy action
=====================  ===========================================  =====================
GenerateUserDataKey    KeyId, UserId, EncryptionContext?,           ``kms:GenerateDataKey``
                       NumberOfBytes? (32), DryRun? ->
                       Plaintext, CiphertextBlob, KeyId
EncryptForUser         KeyId, UserId, Plaintext (1-4096),           ``kms:Encrypt``
                       EncryptionContext?, DryRun? ->
                       CiphertextBlob, KeyId
CreateUserKeys         KeyId, UserIds (1-10,000), DryRun? ->        ``kms:CreateUserKeys``
                       Created, KeyId
DestroyUserKey         KeyId, UserId, DryRun? -> Destroyed, KeyId   ``kms:DestroyUserKey``
DescribeUserKey        KeyId, UserId -> Exists, KeyId               ``kms:DescribeKey``
(alias UserKeyExists)
CountUserKeys          KeyId -> Count, KeyId                        ``kms:DescribeKey``
=====================  ===========================================  =====================

``KeyId`` in a response is the key's ARN. Blobs of user keys are opened by the ordinary
``Decrypt`` (``TrentService.Decrypt``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from strongroom.errors import DryRunOperationError, StrongroomError, UnsupportedOperationError
from strongroom.kms.caller import Caller
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.userkeys.messages import (
    CountUserKeysRequest,
    CountUserKeysResponse,
    CreateUserKeysRequest,
    CreateUserKeysResponse,
    DescribeUserKeyRequest,
    DescribeUserKeyResponse,
    DestroyUserKeyRequest,
    DestroyUserKeyResponse,
    EncryptForUserRequest,
    EncryptForUserResponse,
    GenerateUserDataKeyRequest,
    GenerateUserDataKeyResponse,
    UserKeyExistsRequest,
    UserKeyExistsResponse,
)
from strongroom.kms.userkeys.operations import (
    USER_KEY_CHUNK,
    user_count_keys,
    user_create_keys,
    user_destroy_key,
    user_encrypt,
    user_generate_data_key,
    user_key_present,
)
from strongroom.kms.wire_model import WireModel

USER_KEYS_MODEL_FILE = "strongroom-userkeys-2024-06-01.json"
USER_KEYS_TARGET_PREFIX = "StrongroomUserKeys"
"""The ``X-Amz-Target`` prefix of the user-key operations."""
DEFAULT_DATA_KEY_BYTES = 32


def load_user_keys_model() -> WireModel:
    """The user-key service model shipped in the package, as a :class:`WireModel`."""
    return WireModel.load(("kms", USER_KEYS_MODEL_FILE))


def call_user_keys(
    k: Kernel,
    caller: Caller,
    operation: str,
    request: dict[str, Any],
    request_id: str | None = None,
) -> dict[str, Any]:
    """Run one user-key operation (``"CreateUserKeys"``...) for ``caller``.

    As :meth:`KeyService.call` for the AWS operations: the request is checked against
    the user-key model (``ValidationException`` with AWS's wording) while it is decoded
    into the operation's typed request (:mod:`strongroom.kms.userkeys.messages`), blob
    members are ``bytes`` both ways, ``DryRun`` is honoured, every outcome is audited under
    the operation's name, and failures are :class:`StrongroomError` subclasses.
    """
    k.audit.admit()  # fail-closed audit, as KeyService.call
    ctx = OpContext(
        caller,
        operation,
        request_id or str(uuid.uuid4()),
        dry_run=bool(request.get("DryRun")),
    )
    detail: dict[str, Any] = {}
    try:
        handler = USER_KEY_HANDLERS.get(operation)
        decode = k.user_keys_codec.request_decoder(operation)
        encode = k.user_keys_codec.response_encoder(operation)
        if handler is None or decode is None or encode is None:
            raise UnsupportedOperationError(f"Operation {operation} is not supported.")
        response = encode(handler(k, ctx, detail, decode(request)))
        if ctx.dry_run:
            raise DryRunOperationError(
                "The request would have succeeded, but the DryRun option is set."
            )
    except StrongroomError as exc:
        k.record(ctx, exc.aws_type, detail)
        raise
    k.record(ctx, "Success", detail)
    return response


def generate_user_data_key(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], req: GenerateUserDataKeyRequest
) -> GenerateUserDataKeyResponse:
    """``GenerateUserDataKey``: a data key in plaintext and sealed under the user's key."""
    plaintext, blob = user_generate_data_key(
        k,
        ctx,
        detail,
        key_id=req.key_id,
        user_id=req.user_id,
        context=req.encryption_context,
        number_of_bytes=(
            DEFAULT_DATA_KEY_BYTES if req.number_of_bytes is None else req.number_of_bytes
        ),
    )
    return GenerateUserDataKeyResponse(
        ciphertext_blob=blob, plaintext=plaintext, key_id=ctx.key_arn
    )


def encrypt_for_user(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], req: EncryptForUserRequest
) -> EncryptForUserResponse:
    """``EncryptForUser``: a plaintext sealed under the user's key."""
    blob = user_encrypt(
        k,
        ctx,
        detail,
        key_id=req.key_id,
        user_id=req.user_id,
        plaintext=req.plaintext,
        context=req.encryption_context,
    )
    return EncryptForUserResponse(ciphertext_blob=blob, key_id=ctx.key_arn)


def create_user_keys(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], req: CreateUserKeysRequest
) -> CreateUserKeysResponse:
    """``CreateUserKeys``: a key for each user id (a repeated id is one key)."""
    ids = list(dict.fromkeys(req.user_ids))
    created = user_create_keys(
        k, ctx, detail, key_id=req.key_id, user_ids=ids, chunk_size=USER_KEY_CHUNK
    )
    return CreateUserKeysResponse(key_id=ctx.key_arn, created=created)


def destroy_user_key(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], req: DestroyUserKeyRequest
) -> DestroyUserKeyResponse:
    """``DestroyUserKey``: forget one user's key (crypto-shredding)."""
    destroyed = user_destroy_key(k, ctx, detail, key_id=req.key_id, user_id=req.user_id)
    return DestroyUserKeyResponse(key_id=ctx.key_arn, destroyed=destroyed)


def describe_user_key(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], req: DescribeUserKeyRequest
) -> DescribeUserKeyResponse:
    """``DescribeUserKey``: whether a user has a key."""
    exists = user_key_present(k, ctx, detail, key_id=req.key_id, user_id=req.user_id)
    return DescribeUserKeyResponse(key_id=ctx.key_arn, exists=exists)


def user_key_exists(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], req: UserKeyExistsRequest
) -> UserKeyExistsResponse:
    """``UserKeyExists``: the older name of ``DescribeUserKey``."""
    exists = user_key_present(k, ctx, detail, key_id=req.key_id, user_id=req.user_id)
    return UserKeyExistsResponse(key_id=ctx.key_arn, exists=exists)


def count_user_keys(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], req: CountUserKeysRequest
) -> CountUserKeysResponse:
    """``CountUserKeys``: how many user keys a KMS key has."""
    count = user_count_keys(k, ctx, detail, key_id=req.key_id)
    return CountUserKeysResponse(key_id=ctx.key_arn, count_=count)


UserKeyHandler = Callable[[Kernel, OpContext, dict[str, Any], Any], Any]
"""``handler(kernel, ctx, audit detail, request) -> response`` (generated records)."""

USER_KEY_HANDLERS: Mapping[str, UserKeyHandler] = MappingProxyType(
    {
        "CountUserKeys": count_user_keys,
        "CreateUserKeys": create_user_keys,
        "DescribeUserKey": describe_user_key,
        "DestroyUserKey": destroy_user_key,
        "EncryptForUser": encrypt_for_user,
        "GenerateUserDataKey": generate_user_data_key,
        "UserKeyExists": user_key_exists,
    }
)
"""Every user-key operation, by its name in the user-key model."""
