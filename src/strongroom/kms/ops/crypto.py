"""Symmetric cryptographic operations: Encrypt, Decrypt, ReEncrypt, data keys, randomness.

Asymmetric keys (RSA encryption) branch off to :meth:`asymmetric_encrypt` and
:meth:`asymmetric_decrypt`, which the asymmetric mixin provides.
"""

from __future__ import annotations

import re
from typing import Any

from strongroom.crypto.blob import (
    BlobHeader,
    BlobKind,
    InvalidBlob,
    MessageKeys,
    open_blob,
    seal,
)
from strongroom.crypto.hazmat import random_bytes
from strongroom.errors import (
    IncorrectKeyError,
    InvalidCiphertextError,
    InvalidKeyUsageError,
    NotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.keyspec import ENCRYPT_DECRYPT, SYMMETRIC_DEFAULT, wrong_usage
from strongroom.kms.records import KeyRecord
from strongroom.kms.rsa_encryption import asymmetric_decrypt, asymmetric_encrypt
from strongroom.kms.states import check_state
from strongroom.kms.userkeys.operations import user_key_material
from strongroom.ports import StoreTx

_PLAIN_KEY_ID = re.compile(r"mrk-[0-9a-f]{32}|[0-9a-f-]{1,64}")
_DATA_KEY_BYTES = {"AES_256": 32, "AES_128": 16}


def _number_of_bytes(req: dict[str, Any]) -> int:
    spec, count = req.get("KeySpec"), req.get("NumberOfBytes")
    if spec is not None and count is not None:
        raise ValidationError("Please specify either number of bytes or key spec, not both.")
    if spec is None and count is None:
        raise ValidationError("Please specify either number of bytes or key spec.")
    if spec is not None:
        return _DATA_KEY_BYTES[str(spec)]
    return int(str(count))


def refuse_recipient(req: dict[str, Any]) -> None:
    """Refuse ``Recipient``: answering in plaintext would defeat what the caller asked for."""
    if req.get("Recipient") is not None:
        raise UnsupportedOperationError(
            "Recipient (attested enclave) requests are not supported by Strongroom."
        )


def require_ciphertext(req: dict[str, Any]) -> bytes:
    """Return ``CiphertextBlob``; the model leaves it optional only for DryRun modifiers."""
    blob = req.get("CiphertextBlob")
    if blob is None:
        raise ValidationError(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
            "constraint: Member must not be null"
        )
    return bytes(blob)


def ignores_ciphertext(ctx: OpContext, req: dict[str, Any], key_member: str = "KeyId") -> bool:
    """Whether this is a DryRun with ``IGNORE_CIPHERTEXT``: check the key, not the blob."""
    if not ctx.dry_run or "IGNORE_CIPHERTEXT" not in (req.get("DryRunModifiers") or []):
        return False
    if req.get(key_member) is None:
        raise ValidationError(f"{key_member} is required with the IGNORE_CIPHERTEXT modifier.")
    return True


def check_encryption_algorithm(
    k: Kernel, key: KeyRecord, algorithm: str | None, operation: str
) -> str:
    """Return the algorithm to use; refuse one the key does not offer (AWS's wording)."""
    if key.key_usage != ENCRYPT_DECRYPT:
        raise wrong_usage(key.arn, key.key_usage, operation)
    if key.key_spec == SYMMETRIC_DEFAULT:
        if algorithm not in (None, SYMMETRIC_DEFAULT):
            raise InvalidKeyUsageError(
                f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
            )
        return SYMMETRIC_DEFAULT
    if algorithm is None:
        raise ValidationError("EncryptionAlgorithm is required for asymmetric KMS keys.")
    from strongroom.kms.keyspec import algorithms

    if algorithm not in algorithms(key.key_spec, key.key_usage):
        raise InvalidKeyUsageError(
            f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
        )
    return algorithm


def seal_for(
    k: Kernel, tx: StoreTx, key: KeyRecord, plaintext: bytes, context: dict[str, str] | None
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
    context: dict[str, str] | None,
    key_id: str | None,
    action: str,
    grant_tokens: list[str] | None,
) -> tuple[KeyRecord, bytes, int]:
    """Decrypt a ciphertext blob; the blob names its key, ``key_id`` must agree.

    Returns the key, the plaintext and the key version the blob was sealed under.
    """
    try:
        header, header_end = k.blob_headers.parse(blob)
    except InvalidBlob as exc:
        raise InvalidCiphertextError("") from exc
    if not _PLAIN_KEY_ID.fullmatch(header.key_id):
        raise InvalidCiphertextError("")
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
    k.authorize(tx, ctx, key, action, context, grant_tokens)
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


def encrypt(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Encrypt up to 4 KiB under a KMS key."""
    context = req.get("EncryptionContext")

    def unit(tx: StoreTx) -> dict[str, Any]:
        key = k.usable_key(
            tx, ctx, req["KeyId"], "crypto", "Encrypt", context, req.get("GrantTokens")
        )
        algorithm = check_encryption_algorithm(
            k, key, req.get("EncryptionAlgorithm"), ctx.operation
        )
        if algorithm == SYMMETRIC_DEFAULT:
            blob = seal_for(k, tx, key, req["Plaintext"], context)
        else:
            if context:
                raise ValidationError("EncryptionContext is not supported for asymmetric KMS keys.")
            blob = asymmetric_encrypt(k, tx, key, algorithm, req["Plaintext"])
        return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}

    return k.read_cached(unit)


def decrypt(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Decrypt a blob; with a symmetric blob the KeyId is optional."""
    refuse_recipient(req)
    context = req.get("EncryptionContext")
    algorithm = req.get("EncryptionAlgorithm")

    def unit(tx: StoreTx) -> dict[str, Any]:
        if algorithm not in (None, SYMMETRIC_DEFAULT):
            if req.get("KeyId") is None:
                raise ValidationError("KeyId is required for asymmetric decryption.")
            key = k.usable_key(
                tx, ctx, req["KeyId"], "crypto", "Decrypt", context, req.get("GrantTokens")
            )
            check_encryption_algorithm(k, key, algorithm, ctx.operation)
            plaintext = asymmetric_decrypt(k, tx, key, algorithm, req["CiphertextBlob"])
            return {"KeyId": key.arn, "Plaintext": plaintext, "EncryptionAlgorithm": algorithm}
        if ignores_ciphertext(ctx, req):
            k.usable_key(
                tx, ctx, req["KeyId"], "crypto", "Decrypt", context, req.get("GrantTokens")
            )
            return {}
        key, plaintext, version = open_symmetric(
            k,
            tx,
            ctx,
            require_ciphertext(req),
            context,
            req.get("KeyId"),
            "Decrypt",
            req.get("GrantTokens"),
        )
        return {
            "KeyId": key.arn,
            "Plaintext": plaintext,
            "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
            "KeyMaterialId": k.materials.material_id_of(tx, key, version),
        }

    return k.read_cached(unit)


def re_encrypt(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Decrypt under one key and encrypt under another, without exposing plaintext."""
    source_alg = req.get("SourceEncryptionAlgorithm")
    dest_context = req.get("DestinationEncryptionContext")

    def unit(tx: StoreTx) -> dict[str, Any]:
        source_material: str | None = None
        if source_alg not in (None, SYMMETRIC_DEFAULT):
            if req.get("SourceKeyId") is None:
                raise ValidationError("SourceKeyId is required for asymmetric keys.")
            source = k.usable_key(
                tx,
                ctx,
                req["SourceKeyId"],
                "crypto",
                "ReEncryptFrom",
                None,
                req.get("GrantTokens"),
            )
            check_encryption_algorithm(k, source, source_alg, ctx.operation)
            plaintext = asymmetric_decrypt(k, tx, source, source_alg, req["CiphertextBlob"])
        elif ignores_ciphertext(ctx, req, "SourceKeyId"):
            tokens = req.get("GrantTokens")
            k.usable_key(tx, ctx, req["SourceKeyId"], "crypto", "ReEncryptFrom", None, tokens)
            k.usable_key(
                tx, ctx, req["DestinationKeyId"], "crypto", "ReEncryptTo", dest_context, tokens
            )
            return {}
        else:
            source, plaintext, version = open_symmetric(
                k,
                tx,
                ctx,
                require_ciphertext(req),
                req.get("SourceEncryptionContext"),
                req.get("SourceKeyId"),
                "ReEncryptFrom",
                req.get("GrantTokens"),
            )
            source_material = k.materials.material_id_of(tx, source, version)
        dest = k.usable_key(
            tx,
            ctx,
            req["DestinationKeyId"],
            "crypto",
            "ReEncryptTo",
            dest_context,
            req.get("GrantTokens"),
        )
        ctx.source_key_arn = source.arn
        dest_alg = check_encryption_algorithm(
            k, dest, req.get("DestinationEncryptionAlgorithm"), ctx.operation
        )
        response: dict[str, Any] = {
            "SourceKeyId": source.arn,
            "KeyId": dest.arn,
            "SourceEncryptionAlgorithm": source_alg or SYMMETRIC_DEFAULT,
            "DestinationEncryptionAlgorithm": dest_alg,
        }
        if source_material is not None:
            response["SourceKeyMaterialId"] = source_material
        if dest_alg == SYMMETRIC_DEFAULT:
            response["CiphertextBlob"] = seal_for(k, tx, dest, plaintext, dest_context)
            response["DestinationKeyMaterialId"] = k.materials.material_id_of(
                tx, dest, dest.current_version
            )
        else:
            response["CiphertextBlob"] = asymmetric_encrypt(k, tx, dest, dest_alg, plaintext)
        return response

    return k.read_cached(unit)


def _generate_data_key(
    k: Kernel, ctx: OpContext, req: dict[str, Any], action: str
) -> dict[str, Any]:
    refuse_recipient(req)
    size = _number_of_bytes(req)
    context = req.get("EncryptionContext")

    def unit(tx: StoreTx) -> dict[str, Any]:
        key = k.usable_key(tx, ctx, req["KeyId"], "crypto", action, context, req.get("GrantTokens"))
        if key.key_spec != SYMMETRIC_DEFAULT:
            raise InvalidKeyUsageError(
                f"{key.arn} key usage is {key.key_usage} and key "
                f"spec {key.key_spec}; it cannot generate data keys."
            )
        data_key = random_bytes(size)
        blob = seal_for(k, tx, key, data_key, context)
        return {
            "CiphertextBlob": blob,
            "Plaintext": data_key,
            "KeyId": key.arn,
            "KeyMaterialId": k.materials.material_id_of(tx, key, key.current_version),
        }

    return k.read_cached(unit)


def generate_data_key(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Return a fresh data key in plaintext and encrypted under a KMS key."""
    return _generate_data_key(k, ctx, req, "GenerateDataKey")


def generate_data_key_without_plaintext(
    k: Kernel, ctx: OpContext, req: dict[str, Any]
) -> dict[str, Any]:
    """Return a fresh data key only encrypted under a KMS key."""
    response = _generate_data_key(k, ctx, req, "GenerateDataKeyWithoutPlaintext")
    del response["Plaintext"]
    return response


def generate_random(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Return 1 to 1024 random bytes."""
    refuse_recipient(req)
    if req.get("NumberOfBytes") is None:
        raise ValidationError("NumberOfBytes is required.")
    if req.get("CustomKeyStoreId") is not None:
        raise NotFoundError("Custom key stores are not supported.")
    return {"Plaintext": random_bytes(int(req["NumberOfBytes"]))}
