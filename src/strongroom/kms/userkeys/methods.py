"""The typed in-process methods of per-user keys (crypto-shredding), each one audited call.

``KeyService.encrypt_for_user``, ``generate_user_data_key``, ``create_user_keys``,
``destroy_user_key``, ``user_key_exists`` and ``count_user_keys``: each checks the caller
against the key's policy and grants, runs the operation of
:class:`~strongroom.kms.userkeys.operations.UserKeyOps` in a request context and writes one audit
event, as the HTTP operations (``StrongroomUserKeys.<Op>``) do.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from strongroom.kms.caller import Caller
from strongroom.kms.kernel import Kernel
from strongroom.kms.userkeys.operations import (
    USER_KEY_CHUNK,
    _audited,
    user_count_keys,
    user_create_keys,
    user_destroy_key,
    user_encrypt,
    user_generate_data_key,
    user_key_present,
)


def encrypt_for_user(
    k: Kernel,
    caller: Caller,
    key_id: str,
    user_id: str,
    plaintext: bytes,
    encryption_context: dict[str, str] | None = None,
    *,
    request_id: str | None = None,
) -> bytes:
    """Encrypt up to 4 KiB under the user's key (created on first use); return the blob.

    ``Decrypt`` opens the blob as any other; after :meth:`destroy_user_key` it fails.
    """
    run = partial(
        user_encrypt,
        k,
        key_id=key_id,
        user_id=user_id,
        plaintext=plaintext,
        context=encryption_context,
    )
    return _audited(k, caller, "EncryptForUser", request_id, run)


def generate_user_data_key(
    k: Kernel,
    caller: Caller,
    key_id: str,
    user_id: str,
    encryption_context: dict[str, str] | None = None,
    number_of_bytes: int = 32,
    *,
    request_id: str | None = None,
) -> tuple[bytes, bytes]:
    """Return a fresh data key (1-1024 bytes) in plaintext and sealed under the user's key."""
    run = partial(
        user_generate_data_key,
        k,
        key_id=key_id,
        user_id=user_id,
        context=encryption_context,
        number_of_bytes=number_of_bytes,
    )
    return _audited(k, caller, "GenerateUserDataKey", request_id, run)


def create_user_keys(
    k: Kernel,
    caller: Caller,
    key_id: str,
    user_ids: Sequence[str],
    *,
    chunk_size: int = USER_KEY_CHUNK,
    request_id: str | None = None,
) -> int:
    """Create the user keys that do not exist yet; return how many were created.

    Every id is checked before anything is written; then ``chunk_size`` keys are
    written per transaction, so a failure part-way keeps the chunks already written
    (calling again completes the batch: existing keys are skipped).
    """
    run = partial(user_create_keys, k, key_id=key_id, user_ids=user_ids, chunk_size=chunk_size)
    return _audited(k, caller, "CreateUserKeys", request_id, run)


def destroy_user_key(
    k: Kernel, caller: Caller, key_id: str, user_id: str, *, request_id: str | None = None
) -> bool:
    """Delete one user key (crypto-shredding); return whether it existed.

    Allowed in every key state: forgetting a user never waits for a key to be enabled.
    """
    run = partial(user_destroy_key, k, key_id=key_id, user_id=user_id)
    return _audited(k, caller, "DestroyUserKey", request_id, run)


def user_key_exists(
    k: Kernel, caller: Caller, key_id: str, user_id: str, *, request_id: str | None = None
) -> bool:
    """Whether the user has a key under ``key_id`` (created and not destroyed)."""
    run = partial(user_key_present, k, key_id=key_id, user_id=user_id)
    return _audited(k, caller, "DescribeUserKey", request_id, run)


def count_user_keys(
    k: Kernel, caller: Caller, key_id: str, *, request_id: str | None = None
) -> int:
    """How many user keys exist under ``key_id`` (a range count: linear in the result)."""
    run = partial(user_count_keys, k, key_id=key_id)
    return _audited(k, caller, "CountUserKeys", request_id, run)
