"""In-process request dicts of the hot operations, served through :class:`HotPath`.

:meth:`KeyService.call <strongroom.kms.service.KeyService.call>` hands Encrypt, Decrypt
and GenerateDataKey requests here first. A request is taken only in its plain form: the
members below and nothing else, each of the type and within the bounds the model gives
it (blobs as ``bytes``), no dry run, no grant tokens, the symmetric algorithm if one is
named. Anything else, and anything :class:`HotPath` declines, returns ``None`` and the
request goes the general way (decode, validate in AWS's words, handler, encode), so every
error is the general path's. The response dicts have the general path's members in its
order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strongroom.kms.caller import Caller
from strongroom.kms.hot_path import HotPath
from strongroom.kms.keyspec import SYMMETRIC_DEFAULT

HotCall = Callable[[HotPath, Caller, dict[str, Any], str], dict[str, Any] | None]

# the members a plain request may have (the API's hot JSON path takes the same ones)
ENCRYPT_MEMBERS = frozenset({"KeyId", "Plaintext", "EncryptionContext", "EncryptionAlgorithm"})
DECRYPT_MEMBERS = frozenset({"CiphertextBlob", "EncryptionContext", "KeyId", "EncryptionAlgorithm"})
DATA_KEY_MEMBERS = frozenset({"KeyId", "KeySpec", "NumberOfBytes", "EncryptionContext"})
MAX_KEY_ID = 2048  # KeyIdType
MAX_PLAINTEXT = 4096  # PlaintextType
MAX_CIPHERTEXT = 6144  # CiphertextType
MAX_DATA_KEY = 1024  # NumberOfBytesType
DATA_KEY_SPECS = {"AES_256": 32, "AES_128": 16}  # DataKeySpec


def plain_context(context: object) -> bool:
    """Whether ``context`` is an encryption context as the model takes it: str to str."""
    if type(context) is not dict:
        return False
    for name, value in context.items():
        if type(name) is not str or type(value) is not str:
            return False
    return True


def key_id_of(value: object) -> str | None:
    """``KeyId`` if it is a string of the model's length, else ``None``."""
    if type(value) is str and 0 < len(value) <= MAX_KEY_ID:
        return value
    return None


def data_key_size(spec: object, count: object) -> int | None:
    """The size ``KeySpec`` or ``NumberOfBytes`` asks for (exactly one, valid), else ``None``."""
    if count is None:
        return DATA_KEY_SPECS.get(spec) if type(spec) is str else None
    if spec is None and type(count) is int and 0 < count <= MAX_DATA_KEY:
        return count
    return None


def encrypt(
    hot: HotPath, caller: Caller, request: dict[str, Any], request_id: str
) -> dict[str, Any] | None:
    """``Encrypt`` of a plain in-process request, or ``None``."""
    plaintext = request.get("Plaintext")
    context = request.get("EncryptionContext")
    algorithm = request.get("EncryptionAlgorithm")
    key_id = key_id_of(request.get("KeyId"))
    if (
        not request.keys() <= ENCRYPT_MEMBERS
        or key_id is None
        or type(plaintext) is not bytes
        or not 0 < len(plaintext) <= MAX_PLAINTEXT
        or (context is not None and not plain_context(context))
        or (algorithm is not None and algorithm != SYMMETRIC_DEFAULT)
    ):
        return None
    done = hot.encrypt(caller, request_id, key_id, plaintext, context)
    if done is None:
        return None
    return {"CiphertextBlob": done[0], "EncryptionAlgorithm": SYMMETRIC_DEFAULT, "KeyId": done[1]}


def decrypt(
    hot: HotPath, caller: Caller, request: dict[str, Any], request_id: str
) -> dict[str, Any] | None:
    """``Decrypt`` of a plain in-process request, or ``None``."""
    blob = request.get("CiphertextBlob")
    context = request.get("EncryptionContext")
    algorithm = request.get("EncryptionAlgorithm")
    key_id = request.get("KeyId")
    if (
        not request.keys() <= DECRYPT_MEMBERS
        or type(blob) is not bytes
        or not 0 < len(blob) <= MAX_CIPHERTEXT
        or (context is not None and not plain_context(context))
        or (algorithm is not None and algorithm != SYMMETRIC_DEFAULT)
        or (key_id is not None and key_id_of(key_id) is None)
    ):
        return None
    done = hot.decrypt(caller, request_id, blob, context, key_id)
    if done is None:
        return None
    return {
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "KeyId": done[0],
        "KeyMaterialId": done[1],
        "Plaintext": done[2],
    }


def generate_data_key(
    hot: HotPath, caller: Caller, request: dict[str, Any], request_id: str
) -> dict[str, Any] | None:
    """``GenerateDataKey`` of a plain in-process request, or ``None``."""
    context = request.get("EncryptionContext")
    key_id = key_id_of(request.get("KeyId"))
    size = data_key_size(request.get("KeySpec"), request.get("NumberOfBytes"))
    if (
        not request.keys() <= DATA_KEY_MEMBERS
        or key_id is None
        or size is None
        or (context is not None and not plain_context(context))
    ):
        return None
    done = hot.generate_data_key(caller, request_id, key_id, size, context)
    if done is None:
        return None
    return {
        "CiphertextBlob": done[0],
        "KeyId": done[1],
        "KeyMaterialId": done[2],
        "Plaintext": done[3],
    }


HOT_CALLS: dict[str, HotCall] = {
    "Encrypt": encrypt,
    "Decrypt": decrypt,
    "GenerateDataKey": generate_data_key,
}
"""The in-process entry of each hot operation."""
