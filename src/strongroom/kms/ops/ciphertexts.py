"""Sealing and opening ciphertext blobs under a KMS key: the steps the symmetric operations share.

:func:`seal_for` encrypts under a key's current version (Encrypt, ReEncrypt, data keys and
data key pairs); :func:`open_symmetric` finds the key a blob names, checks it against the
requested one, authorises, and opens the blob (Decrypt, ReEncrypt). Every way a blob can be
bad is one detail-free ``InvalidCiphertextException``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from strongroom.crypto.blob import (
    BlobHeader,
    BlobKind,
    InvalidBlob,
    MessageKeys,
    open_blob,
    seal,
)
from strongroom.errors import IncorrectKeyError, InvalidCiphertextError, NotFoundError
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.keyspec import SYMMETRIC_DEFAULT
from strongroom.kms.records import KeyRecord
from strongroom.kms.states import check_state
from strongroom.kms.userkeys.operations import user_key_material
from strongroom.ports import StoreTx

_PLAIN_KEY_ID = re.compile(r"mrk-[0-9a-f]{32}|[0-9a-f-]{1,64}")
PLAIN_KEY_IDS: set[str] = set()
"""Key ids of blob headers that matched :data:`_PLAIN_KEY_ID` (bounded: emptied when full)."""
_MAX_PLAIN_KEY_IDS = 4096


def seal_for(
    k: Kernel, tx: StoreTx, key: KeyRecord, plaintext: bytes, context: Mapping[str, str] | None
) -> bytes:
    """Encrypt under the key's current version into a ciphertext blob."""
    keys = k.materials.message_keys(tx, key, key.current_version)
    header = BlobHeader(key.key_id, key.current_version)
    return seal(keys, key.account_id, header, plaintext, context)


def open_symmetric(
    k: Kernel,
    tx: StoreTx,
    ctx: OpContext,
    blob: bytes,
    context: Mapping[str, str] | None,
    key_id: str | None,
    action: str,
    grant_tokens: Sequence[str] | None,
) -> tuple[KeyRecord, bytes, int]:
    """Decrypt a ciphertext blob; the blob names its key, ``key_id`` must agree.

    Returns the key, the plaintext and the key version the blob was sealed under.
    """
    try:
        header, header_end = k.blob_headers.parse(blob)
    except InvalidBlob as exc:
        raise InvalidCiphertextError("") from exc
    key_name = header.key_id
    if key_name not in PLAIN_KEY_IDS:  # the pattern, matched once per key id
        if not _PLAIN_KEY_ID.fullmatch(key_name):
            raise InvalidCiphertextError("")
        if len(PLAIN_KEY_IDS) >= _MAX_PLAIN_KEY_IDS:
            PLAIN_KEY_IDS.clear()
        PLAIN_KEY_IDS.add(key_name)
    requested = None if key_id is None else k.resolve_key(tx, ctx, key_id)
    try:
        key = k.resolve_key(tx, ctx, header.key_id)
        if header.key_version > key.current_version:  # rotated by another process?
            key = k.resolve_fresh(tx, ctx, header.key_id)
    except NotFoundError as exc:
        # A header naming no key of the caller is a bad ciphertext, KeyId or not:
        # IncorrectKey is only for a ciphertext of another existing key.
        raise InvalidCiphertextError("") from exc
    if requested is not None and requested.key_id != key.key_id:
        raise IncorrectKeyError(
            "The key ID in the request does not identify a CMK that can perform this operation."
        )
    # k.authorize, one frame less: every Decrypt comes here
    k.authorizer.authorize(tx, ctx.caller, key, action, context, grant_tokens)
    check_state(key.key_state, "crypto", key.arn)
    if key.key_spec != SYMMETRIC_DEFAULT or header.key_version > key.current_version:
        raise InvalidCiphertextError("")
    material: bytes | MessageKeys
    try:
        if header.kind is BlobKind.USER_KEY:
            material = user_key_material(k, tx, key, header)
        else:
            material = k.materials.message_keys(tx, key, header.key_version)
    except NotFoundError as exc:  # a version or user key the blob names is gone
        raise InvalidCiphertextError("") from exc
    try:
        plaintext = open_blob(material, key.account_id, blob, context, header_end)
        return key, plaintext, header.key_version
    except InvalidBlob as exc:
        raise InvalidCiphertextError("") from exc
