"""Encrypt, Decrypt and MAC with a managed key that never leaves the server."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.kmip import ciphers, lifecycle
from strongroom.kmip.context import OpCall
from strongroom.kmip.errors import KmipError
from strongroom.kmip.objects import ManagedObject, unseal
from strongroom.kmip.tags import (
    BlockCipherMode,
    CryptographicAlgorithm,
    HashingAlgorithm,
    ObjectType,
    PaddingMethod,
    ResultReason,
    Tag,
    UsageMask,
)
from strongroom.kmip.ttlv import Item, byte_string, text

MAX_DATA_BYTES = 1 << 20
"""Largest Data accepted by Encrypt, Decrypt or MAC."""

TAG_ITEM_SINCE = (1, 4)
"""KMIP 1.4 added Authenticated Encryption Tag; older versions append the tag to Data."""

HMAC_HASHES = {
    CryptographicAlgorithm.HMAC_SHA1: "SHA-1",
    CryptographicAlgorithm.HMAC_SHA224: "SHA-224",
    CryptographicAlgorithm.HMAC_SHA256: "SHA-256",
    CryptographicAlgorithm.HMAC_SHA384: "SHA-384",
    CryptographicAlgorithm.HMAC_SHA512: "SHA-512",
}
HASH_NAMES = {
    HashingAlgorithm.SHA_1: "SHA-1",
    HashingAlgorithm.SHA_224: "SHA-224",
    HashingAlgorithm.SHA_256: "SHA-256",
    HashingAlgorithm.SHA_384: "SHA-384",
    HashingAlgorithm.SHA_512: "SHA-512",
}


@dataclass(frozen=True, slots=True)
class Params:
    """The Cryptographic Parameters that matter here."""

    mode: int | None
    padding: int | None
    algorithm: int | None
    hashing: int | None
    tag_length: int | None


def _int(item: Item | None) -> int | None:
    return item.value if item is not None and isinstance(item.value, int) else None


def _params(payload: Item, obj: ManagedObject) -> Params:
    given = payload.find(Tag.CRYPTOGRAPHIC_PARAMETERS) or obj.attr("Cryptographic Parameters")
    if given is None:
        return Params(None, None, None, None, None)
    return Params(
        _int(given.find(Tag.BLOCK_CIPHER_MODE)),
        _int(given.find(Tag.PADDING_METHOD)),
        _int(given.find(Tag.CRYPTOGRAPHIC_ALGORITHM)),
        _int(given.find(Tag.HASHING_ALGORITHM)),
        _int(given.find(Tag.TAG_LENGTH)),
    )


def _bytes(payload: Item, tag: int, required: bool = True) -> bytes:
    found = payload.find(tag)
    if found is None or not isinstance(found.value, bytes):
        if required:
            raise KmipError(ResultReason.MISSING_DATA, f"missing item 0x{tag:06X}")
        return b""
    if len(found.value) > MAX_DATA_BYTES:
        raise KmipError(ResultReason.INVALID_FIELD, "data too long")
    return found.value


def _key(call: OpCall, payload: Item, use: str, bit: UsageMask) -> tuple[ManagedObject, bytes]:
    uid = call.uid_of(payload)
    obj = call.read_object(uid)
    if obj.object_type is not ObjectType.SYMMETRIC_KEY:
        raise KmipError(ResultReason.ILLEGAL_OPERATION, f"{use} needs a symmetric key")
    lifecycle.check_use(use, obj.state)
    if not obj.int_attr("Cryptographic Usage Mask") & bit:
        raise KmipError(ResultReason.PERMISSION_DENIED, f"the key's usage mask forbids {use}")
    return obj, unseal(call.keys, call.client.tenant, obj)


def _aes(obj: ManagedObject, params: Params) -> int:
    algorithm = params.algorithm or obj.int_attr("Cryptographic Algorithm")
    if algorithm != CryptographicAlgorithm.AES:
        raise KmipError(ResultReason.FEATURE_NOT_SUPPORTED, "Encrypt and Decrypt use AES keys")
    mode = params.mode or BlockCipherMode.GCM
    if mode == BlockCipherMode.CBC and params.padding == PaddingMethod.PKCS5:
        return mode
    if mode == BlockCipherMode.GCM and params.tag_length in (None, ciphers.GCM_TAG_BYTES):
        return mode
    raise KmipError(
        ResultReason.FEATURE_NOT_SUPPORTED, "AES-GCM, or AES-CBC with PKCS5 padding, only"
    )


def op_encrypt(call: OpCall, payload: Item) -> list[Item]:
    """Encrypt: AES-GCM (default) or AES-CBC/PKCS5, always under an IV chosen here."""
    obj, key = _key(call, payload, "Encrypt", UsageMask.ENCRYPT)
    mode = _aes(obj, _params(payload, obj))
    if payload.find(Tag.IV_COUNTER_NONCE) is not None:
        raise KmipError(ResultReason.FEATURE_NOT_SUPPORTED, "the server chooses the IV")
    data = _bytes(payload, Tag.DATA)
    answer = [text(Tag.UNIQUE_IDENTIFIER, obj.uid)]
    if mode == BlockCipherMode.CBC:
        iv, sealed = ciphers.cbc_encrypt(key, data)
        return [*answer, byte_string(Tag.DATA, sealed), byte_string(Tag.IV_COUNTER_NONCE, iv)]
    aad = _bytes(payload, Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, required=False)
    iv, sealed, tag = ciphers.gcm_encrypt(key, data, aad)
    if call.version < TAG_ITEM_SINCE:  # no tag item before KMIP 1.4: the tag ends the data
        return [*answer, byte_string(Tag.DATA, sealed + tag), byte_string(Tag.IV_COUNTER_NONCE, iv)]
    return [
        *answer,
        byte_string(Tag.DATA, sealed),
        byte_string(Tag.IV_COUNTER_NONCE, iv),
        byte_string(Tag.AUTHENTICATED_ENCRYPTION_TAG, tag),
    ]


def op_decrypt(call: OpCall, payload: Item) -> list[Item]:
    """Decrypt: the inverse of Encrypt; one Cryptographic Failure for every bad input."""
    obj, key = _key(call, payload, "Decrypt", UsageMask.DECRYPT)
    mode = _aes(obj, _params(payload, obj))
    data = _bytes(payload, Tag.DATA)
    iv = _bytes(payload, Tag.IV_COUNTER_NONCE)
    try:
        if mode == BlockCipherMode.CBC:
            plain = ciphers.cbc_decrypt(key, iv, data)
        else:
            tag = _bytes(payload, Tag.AUTHENTICATED_ENCRYPTION_TAG, required=False)
            if not tag:  # KMIP before 1.4 (or a client that appends it): the tag ends the data
                data, tag = data[: -ciphers.GCM_TAG_BYTES], data[-ciphers.GCM_TAG_BYTES :]
            aad = _bytes(payload, Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, required=False)
            plain = ciphers.gcm_decrypt(key, iv, data, tag, aad)
    except ciphers.CipherFailed:
        raise KmipError(ResultReason.CRYPTOGRAPHIC_FAILURE, "decryption failed") from None
    return [text(Tag.UNIQUE_IDENTIFIER, obj.uid), byte_string(Tag.DATA, plain)]


def op_mac(call: OpCall, payload: Item) -> list[Item]:
    """MAC: HMAC with the hash the parameters (or the key's algorithm) name."""
    obj, key = _key(call, payload, "MAC", UsageMask.MAC_GENERATE)
    params = _params(payload, obj)
    algorithm = params.algorithm or obj.int_attr("Cryptographic Algorithm")
    hash_name = HMAC_HASHES.get(algorithm) or HASH_NAMES.get(params.hashing or 0)  # type: ignore[call-overload]
    if hash_name is None:
        raise KmipError(ResultReason.FEATURE_NOT_SUPPORTED, "MAC is HMAC with SHA-1 or SHA-2")
    data = _bytes(payload, Tag.DATA)
    return [
        text(Tag.UNIQUE_IDENTIFIER, obj.uid),
        byte_string(Tag.MAC_DATA, ciphers.mac(key, hash_name, data)),
    ]
