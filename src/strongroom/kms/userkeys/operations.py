"""User keys: one small wrapped key per end user of a tenant, destroyable one by one.

A user key is 32 random bytes, kept only wrapped, under the store name
``(<account>, "userkey", "<key id>/<user id>")``. It is wrapped (``crypto.wrap``) by
``HKDF-Expand(material of the KMS key's current version, "strongroom/userkey-wrap/v1")``
with the identity ``("userkey", account, key id, user id, version)``, and the record keeps
that version, so the user key outlives rotations of its KMS key. Blobs under a user key are
ordinary version-1 blobs of kind ``USER_KEY`` naming the key, that version and the user id;
the normal ``Decrypt`` (and ``ReEncrypt``) opens them, so AWS clients need nothing special.

Deleting the one row is the shred (``destroy_user_key``): afterwards every
blob of that user fails to decrypt with ``InvalidCiphertextException``, exactly as a
tampered blob does (use ``user_key_exists`` to tell the two apart). Every
decryption reads the row, so a destroy takes effect at once in every process; only the
unwrapping is cached, keyed by the row's exact bytes.

User ids are 1 to 256 bytes of UTF-8 without NUL. They may contain ``/``: key ids never
do, so ``"<key id>/"`` is still an exact prefix of one key's user keys. User ids are
written to the audit log (which is append-only): use opaque ids, not e-mail addresses.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from strongroom.crypto.blob import BlobHeader, BlobKind, seal
from strongroom.crypto.hazmat import KEY_BYTES, hkdf_expand_sha256, random_bytes
from strongroom.crypto.wrap import UnwrapFailed, unwrap_key
from strongroom.errors import (
    InvalidCiphertextError,
    InvalidKeyUsageError,
    RootOfTrustError,
    StoreError,
    StrongroomError,
    ValidationError,
)
from strongroom.kms.caller import Caller
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.keyspec import ENCRYPT_DECRYPT, SYMMETRIC_DEFAULT
from strongroom.kms.records import KeyRecord, UserKeyRecord
from strongroom.kms.userkey_rows import (
    check_user_id,
    new_user_key,
    user_identities,
    user_key_name,
)
from strongroom.ports import StoreTx

T = TypeVar("T")

USER_KEY_KIND = "userkey"
USER_KEY_CHUNK = 10_000
"""User keys created per transaction by ``create_user_keys`` (:mod:`.ops_userkeys_methods`)."""
_WRAP_LABEL = b"strongroom/userkey-wrap/v1"


def user_encrypt(
    k: Kernel,
    ctx: OpContext,
    detail: dict[str, Any],
    *,
    key_id: str,
    user_id: str,
    plaintext: bytes,
    context: Mapping[str, str] | None,
) -> bytes:
    """:meth:`encrypt_for_user` as ``ctx``; ``detail`` collects the audit detail."""
    request = {"KeyId": key_id, "Plaintext": plaintext, "EncryptionContext": context}
    return _seal_for_user(k, ctx, "Encrypt", request, user_id, plaintext, detail)


def user_generate_data_key(
    k: Kernel,
    ctx: OpContext,
    detail: dict[str, Any],
    *,
    key_id: str,
    user_id: str,
    context: Mapping[str, str] | None,
    number_of_bytes: int,
) -> tuple[bytes, bytes]:
    """:meth:`generate_user_data_key` as ``ctx``."""
    request = {"KeyId": key_id, "NumberOfBytes": number_of_bytes, "EncryptionContext": context}
    k.model.validate("GenerateDataKey", request)
    data_key = random_bytes(number_of_bytes)
    return data_key, _seal_for_user(k, ctx, "GenerateDataKey", request, user_id, data_key, detail)


def user_create_keys(
    k: Kernel,
    ctx: OpContext,
    detail: dict[str, Any],
    *,
    key_id: str,
    user_ids: Sequence[str],
    chunk_size: int = USER_KEY_CHUNK,
) -> int:
    """:meth:`create_user_keys` as ``ctx``."""
    detail["userKeysRequested"] = len(user_ids)
    k.model.validate("DescribeKey", {"KeyId": key_id})
    if chunk_size < 1:
        raise ValidationError("chunk_size must be at least 1.")
    ids = [check_user_id(user_id) for user_id in user_ids]
    # resolve an alias once: every chunk must go to the same key
    plain_id = k.read(
        lambda tx: _user_capable_key(k, tx, ctx, key_id, "CreateUserKeys", None).key_id
    )
    detail["userKeysCreated"] = 0
    for start in range(0, len(ids), chunk_size):
        part = ids[start : start + chunk_size]
        detail["userKeysCreated"] += k.write(
            ctx, partial(_insert_user_keys, k, ctx=ctx, key_id=plain_id, user_ids=part)
        )
    created: int = detail["userKeysCreated"]
    return created


def user_destroy_key(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], *, key_id: str, user_id: str
) -> bool:
    """:meth:`destroy_user_key` as ``ctx`` (a dry run rolls the delete back)."""

    def unit(tx: StoreTx, key: KeyRecord) -> tuple[tuple[str, str, str], bool]:
        name = user_key_name(key.key_id, user_id)
        return (key.account_id, key.key_id, user_id), tx.delete(key.account_id, USER_KEY_KIND, name)

    detail["userId"] = check_user_id(user_id)
    cached, existed = _on_key(k, ctx, key_id, "DestroyUserKey", unit)
    k.user_keys.discard(cached)
    detail["userKeyExisted"] = existed
    return existed


def user_key_present(
    k: Kernel, ctx: OpContext, detail: dict[str, Any], *, key_id: str, user_id: str
) -> bool:
    """:meth:`user_key_exists` as ``ctx``."""

    def unit(tx: StoreTx, key: KeyRecord) -> bool:
        name = user_key_name(key.key_id, user_id)
        return tx.get(key.account_id, USER_KEY_KIND, name) is not None

    detail["userId"] = check_user_id(user_id)
    return _on_key(k, ctx, key_id, "DescribeKey", unit)


def user_count_keys(k: Kernel, ctx: OpContext, detail: dict[str, Any], *, key_id: str) -> int:
    """:meth:`count_user_keys` as ``ctx``."""

    def unit(tx: StoreTx, key: KeyRecord) -> int:
        return tx.count(key.account_id, USER_KEY_KIND, key.key_id + "/")

    return _on_key(k, ctx, key_id, "DescribeKey", unit)


def user_key_material(k: Kernel, tx: StoreTx, key: KeyRecord, header: BlobHeader) -> bytes:
    """The user key a ``USER_KEY`` blob names; a destroyed one is InvalidCiphertext."""
    if header.user_id is None or "\x00" in header.user_id:  # no such user id is stored
        raise InvalidCiphertextError("")
    raw = tx.get(key.account_id, USER_KEY_KIND, user_key_name(key.key_id, header.user_id))
    if raw is None:
        raise InvalidCiphertextError("")
    version, material = _unwrap_user_key(k, tx, key, header.user_id, raw)
    if version != header.key_version:
        raise InvalidCiphertextError("")
    return material


def _audited(
    k: Kernel,
    caller: Caller,
    operation: str,
    request_id: str | None,
    run: Callable[[OpContext, dict[str, Any]], T],
) -> T:
    ctx = OpContext(caller, operation, request_id or str(uuid.uuid4()))
    detail: dict[str, Any] = {}
    try:
        result = run(ctx, detail)
    except StrongroomError as exc:
        k.record(ctx, exc.aws_type, detail)
        raise
    k.record(ctx, "Success", detail)
    return result


def _on_key(
    k: Kernel, ctx: OpContext, key_id: str, action: str, fn: Callable[[StoreTx, KeyRecord], T]
) -> T:
    """Validate, resolve and authorise (any key state), then ``fn`` (writes if destroying)."""
    k.model.validate("DescribeKey", {"KeyId": key_id})

    def unit(tx: StoreTx) -> T:
        key = k.resolve_key(tx, ctx, key_id)
        k.authorize(tx, ctx, key, action)
        return fn(tx, key)

    return k.write(ctx, unit) if action == "DestroyUserKey" else k.read_cached(unit)


def _user_capable_key(
    k: Kernel,
    tx: StoreTx,
    ctx: OpContext,
    key_id: str,
    action: str,
    context: Mapping[str, str] | None,
) -> KeyRecord:
    key = k.usable_key(tx, ctx, key_id, "crypto", action, context)
    if key.key_spec != SYMMETRIC_DEFAULT or key.key_usage != ENCRYPT_DECRYPT:
        raise InvalidKeyUsageError(
            f"{key.arn} key usage is {key.key_usage} and key spec is {key.key_spec}; "
            "only symmetric encryption keys hold user keys."
        )
    return key


def _wrapping_key(k: Kernel, tx: StoreTx, key: KeyRecord, version: int) -> bytes:
    return hkdf_expand_sha256(k.materials.material(tx, key, version), _WRAP_LABEL)


def _unwrap_user_key(
    k: Kernel, tx: StoreTx, key: KeyRecord, user_id: str, raw: bytes
) -> tuple[int, bytes]:
    cache_key = (key.account_id, key.key_id, user_id)
    cached = k.user_keys.get(cache_key)
    if cached is not None and cached[0] == raw:
        return cached[1], cached[2]
    record = UserKeyRecord.from_bytes(raw)
    version = record.key_version
    if record.user_id != user_id or version < 1:
        raise RootOfTrustError("a stored user key does not belong to its row")
    identity = user_identities(key, version)(user_id)
    try:
        material = unwrap_key(_wrapping_key(k, tx, key, version), record.wrapped_material, identity)
    except UnwrapFailed as exc:
        raise RootOfTrustError("a stored user key does not unwrap") from exc
    k.user_keys.put(cache_key, (raw, version, material))
    return version, material


def _seal_for_user(
    k: Kernel,
    ctx: OpContext,
    action: str,
    request: dict[str, Any],
    user_id: str,
    plaintext: bytes,
    detail: dict[str, Any],
) -> bytes:
    """Seal ``plaintext`` under the user's key, created if it does not exist (race-safe)."""
    k.model.validate(action, request)
    detail["userId"] = check_user_id(user_id)
    key_id, context = request["KeyId"], request["EncryptionContext"]

    def look(tx: StoreTx) -> tuple[KeyRecord, tuple[int, bytes] | None]:
        key = _user_capable_key(k, tx, ctx, key_id, action, context)
        raw = tx.get(key.account_id, USER_KEY_KIND, user_key_name(key.key_id, user_id))
        return key, None if raw is None else _unwrap_user_key(k, tx, key, user_id, raw)

    def create(tx: StoreTx) -> tuple[KeyRecord, tuple[int, bytes], bool]:
        key = _user_capable_key(k, tx, ctx, key_id, action, context)
        name, version = user_key_name(key.key_id, user_id), key.current_version
        secret = random_bytes(KEY_BYTES)
        wrapping = _wrapping_key(k, tx, key, version)
        identity = user_identities(key, version)(user_id)
        raw = new_user_key(wrapping, identity, user_id, version, secret, k.clock.now())
        if tx.insert(key.account_id, USER_KEY_KIND, name, raw):
            k.user_keys.put((key.account_id, key.key_id, user_id), (raw, version, secret))
            return key, (version, secret), True
        existing = tx.get(key.account_id, USER_KEY_KIND, name)  # a rival created it
        if existing is None:  # insert saw a row this snapshot does not: a store bug
            raise StoreError("a user key vanished while it was being created")
        return key, _unwrap_user_key(k, tx, key, user_id, existing), False

    key, found = k.read_cached(look)
    created = False
    if found is None:
        key, found, created = k.write(ctx, create)
    detail["userKeyCreated"] = created
    header = BlobHeader(key.key_id, found[0], BlobKind.USER_KEY, user_id)
    return seal(found[1], key.account_id, header, plaintext, context)


def _insert_user_keys(
    k: Kernel, tx: StoreTx, *, ctx: OpContext, key_id: str, user_ids: list[str]
) -> int:
    key = _user_capable_key(k, tx, ctx, key_id, "CreateUserKeys", None)
    version = key.current_version
    wrapping, identity = _wrapping_key(k, tx, key, version), user_identities(key, version)
    now = k.clock.now()
    secrets = random_bytes(KEY_BYTES * len(user_ids))
    items = sorted(
        (
            user_key_name(key.key_id, user_id),
            new_user_key(
                wrapping,
                identity(user_id),
                user_id,
                version,
                secrets[i * KEY_BYTES : (i + 1) * KEY_BYTES],
                now,
            ),
        )
        for i, user_id in enumerate(user_ids)
    )
    return tx.insert_many(key.account_id, USER_KEY_KIND, items)
