"""JSON bodies of the hot operations straight to the key service's typed entries and back.

For Encrypt, Decrypt and GenerateDataKey a backend may offer a ``hot_path``
(:class:`~strongroom.api.backend.HotKeyService`: typed values in, response fields out).
:class:`HotJson` takes a parsed request body in its plain form (the members below and
nothing else, each of the JSON type, base64 and bounds the model gives it, no dry run, no
grant tokens, the symmetric algorithm if one is named), calls that entry and writes the
response body itself: no request dict with blobs as bytes, no response dict copied to be
base64-encoded. It returns ``None`` for anything else, and whenever the entry declines
(which it does before any effect): the handler then serves the request the general way,
which answers or raises as it always does. The bodies are byte for byte the general
path's: the same members in the same order, through the same JSON encoder.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from strongroom.api.backend import HotKeyService
from strongroom.kms.caller import Caller
from strongroom.kms.hot_requests import (
    DATA_KEY_MEMBERS,
    DECRYPT_MEMBERS,
    ENCRYPT_MEMBERS,
    MAX_CIPHERTEXT,
    MAX_PLAINTEXT,
    data_key_size,
    key_id_of,
    plain_context,
)
from strongroom.kms.keyspec import SYMMETRIC_DEFAULT

HotRoute = Callable[[Caller, dict[str, Any], str], bytes | None]

_a2b = binascii.a2b_base64
_b2a = binascii.b2a_base64
_dumps = orjson.dumps
_T = TypeVar("_T")


def blob_of(value: object, limit: int) -> bytes | None:
    """A base64 member as ``bytes`` if it is valid base64 of 1 to ``limit`` bytes."""
    if type(value) is not str or not value or len(value) % 4:
        return None
    try:
        blob = _a2b(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return blob if len(blob) <= limit else None


# The JSON between a response's base64 members is the same for every answer under one key
# (and KeyMaterialId): made once by the encoder, from the response with those members
# empty, so the body is byte for byte the encoder's (base64 text needs no escaping).
_CIPHERTEXT_OPEN = b'{"CiphertextBlob":"'
_CLOSE = b'"}'
_MAX_TEMPLATES = 4096


class HotJson:
    """The hot operations' JSON bodies over a backend's :class:`HotKeyService`."""

    def __init__(self, hot: HotKeyService) -> None:
        self._hot = hot
        self.routes: dict[str, HotRoute] = {
            "Encrypt": self.encrypt,
            "Decrypt": self.decrypt,
            "GenerateDataKey": self.generate_data_key,
        }
        # the response templates, by key ARN (and KeyMaterialId); bounded
        self._encrypt_tails: dict[str, bytes] = {}
        self._decrypt_heads: dict[tuple[str, str], bytes] = {}
        self._data_key_middles: dict[tuple[str, str], bytes] = {}

    def encrypt(self, caller: Caller, body: dict[str, Any], request_id: str) -> bytes | None:
        """The response body of a plain ``Encrypt``, or ``None``."""
        context = body.get("EncryptionContext")
        algorithm = body.get("EncryptionAlgorithm")
        key_id = key_id_of(body.get("KeyId"))
        plaintext = blob_of(body.get("Plaintext"), MAX_PLAINTEXT)
        if (
            key_id is None
            or plaintext is None
            or not body.keys() <= ENCRYPT_MEMBERS
            or (context is not None and not plain_context(context))
            or (algorithm is not None and algorithm != SYMMETRIC_DEFAULT)
        ):
            return None
        done = self._hot.encrypt(caller, request_id, key_id, plaintext, context)
        if done is None:
            return None
        tail = self._encrypt_tails.get(done[1])
        if tail is None:
            empty = {
                "CiphertextBlob": "",
                "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
                "KeyId": done[1],
            }
            tail = _dumps(empty)[len(_CIPHERTEXT_OPEN) :]
            _remember(self._encrypt_tails, done[1], tail)
        return b"".join((_CIPHERTEXT_OPEN, _b2a(done[0], newline=False), tail))

    def decrypt(self, caller: Caller, body: dict[str, Any], request_id: str) -> bytes | None:
        """The response body of a plain ``Decrypt``, or ``None``."""
        context = body.get("EncryptionContext")
        algorithm = body.get("EncryptionAlgorithm")
        key_id = body.get("KeyId")
        # blob_of(body.get("CiphertextBlob"), MAX_CIPHERTEXT), inlined (one frame less per
        # Decrypt); tests/api/test_hot_json_blob.py holds the two to the same answers
        value = body.get("CiphertextBlob")
        if type(value) is not str or not value or len(value) % 4:
            return None
        try:
            blob = _a2b(value, strict_mode=True)
        except (binascii.Error, ValueError):
            return None
        if (
            len(blob) > MAX_CIPHERTEXT
            or not body.keys() <= DECRYPT_MEMBERS
            or (context is not None and not plain_context(context))
            or (algorithm is not None and algorithm != SYMMETRIC_DEFAULT)
            or (key_id is not None and key_id_of(key_id) is None)
        ):
            return None
        done = self._hot.decrypt(caller, request_id, blob, context, key_id)
        if done is None:
            return None
        named = (done[0], done[1])
        head = self._decrypt_heads.get(named)
        if head is None:
            empty = {
                "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
                "KeyId": done[0],
                "KeyMaterialId": done[1],
                "Plaintext": "",
            }
            head = _dumps(empty)[: -len(_CLOSE)]
            _remember(self._decrypt_heads, named, head)
        return b"".join((head, _b2a(done[2], newline=False), _CLOSE))

    def generate_data_key(
        self, caller: Caller, body: dict[str, Any], request_id: str
    ) -> bytes | None:
        """The response body of a plain ``GenerateDataKey``, or ``None``."""
        context = body.get("EncryptionContext")
        key_id = key_id_of(body.get("KeyId"))
        size = data_key_size(body.get("KeySpec"), body.get("NumberOfBytes"))
        if (
            key_id is None
            or size is None
            or not body.keys() <= DATA_KEY_MEMBERS
            or (context is not None and not plain_context(context))
        ):
            return None
        done = self._hot.generate_data_key(caller, request_id, key_id, size, context)
        if done is None:
            return None
        named = (done[1], done[2])
        middle = self._data_key_middles.get(named)
        if middle is None:
            empty = {
                "CiphertextBlob": "",
                "KeyId": done[1],
                "KeyMaterialId": done[2],
                "Plaintext": "",
            }
            middle = _dumps(empty)[len(_CIPHERTEXT_OPEN) : -len(_CLOSE)]
            _remember(self._data_key_middles, named, middle)
        return b"".join(
            (
                _CIPHERTEXT_OPEN,
                _b2a(done[0], newline=False),
                middle,
                _b2a(done[3], newline=False),
                _CLOSE,
            )
        )


def _remember(templates: dict[_T, bytes], name: _T, template: bytes) -> None:
    if len(templates) >= _MAX_TEMPLATES:
        templates.clear()
    templates[name] = template
