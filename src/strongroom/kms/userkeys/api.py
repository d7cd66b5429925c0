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
from typing import Any

from strongroom.errors import DryRunOperationError, StrongroomError, UnsupportedOperationError
from strongroom.kms.caller import Caller
from strongroom.kms.kernel import Kernel, OpContext
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
    the user-key model (``ValidationException`` with AWS's wording), blob members are
    ``bytes`` both ways, ``DryRun`` is honoured, every outcome is audited under the
    operation's name, and failures are :class:`StrongroomError` subclasses.
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
        if operation not in k.user_keys_model.operations:
            raise UnsupportedOperationError(f"Operation {operation} is not supported.")
        k.user_keys_model.validate(operation, request)
        response = _user_key_operation(k, ctx, detail, operation, request)
        if ctx.dry_run:
            raise DryRunOperationError(
                "The request would have succeeded, but the DryRun option is set."
            )
    except StrongroomError as exc:
        k.record(ctx, exc.aws_type, detail)
        raise
    k.record(ctx, "Success", detail)
    response["KeyId"] = ctx.key_arn
    return response


def _user_key_operation(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], operation: str, request: dict[str, Any]
) -> dict[str, Any]:
    key_id: str = request["KeyId"]
    context = request.get("EncryptionContext")
    if operation == "GenerateUserDataKey":
        plaintext, blob = user_generate_data_key(
            k,
            ctx,
            detail,
            key_id=key_id,
            user_id=request["UserId"],
            context=context,
            number_of_bytes=request.get("NumberOfBytes", DEFAULT_DATA_KEY_BYTES),
        )
        return {"Plaintext": plaintext, "CiphertextBlob": blob}
    if operation == "EncryptForUser":
        blob = user_encrypt(
            k,
            ctx,
            detail,
            key_id=key_id,
            user_id=request["UserId"],
            plaintext=request["Plaintext"],
            context=context,
        )
        return {"CiphertextBlob": blob}
    if operation == "CreateUserKeys":
        ids = list(dict.fromkeys(request["UserIds"]))  # a repeated id is one key
        created = user_create_keys(
            k, ctx, detail, key_id=key_id, user_ids=ids, chunk_size=USER_KEY_CHUNK
        )
        return {"Created": created}
    if operation == "DestroyUserKey":
        destroyed = user_destroy_key(k, ctx, detail, key_id=key_id, user_id=request["UserId"])
        return {"Destroyed": destroyed}
    if operation in ("DescribeUserKey", "UserKeyExists"):
        exists = user_key_present(k, ctx, detail, key_id=key_id, user_id=request["UserId"])
        return {"Exists": exists}
    if operation == "CountUserKeys":
        return {"Count": user_count_keys(k, ctx, detail, key_id=key_id)}
    raise UnsupportedOperationError(f"{operation} is not supported by Strongroom.")
