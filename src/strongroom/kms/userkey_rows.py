"""User key rows: their store names, user id rules, wrapping identities and stored bytes.

The pure parts of :mod:`strongroom.kms.userkeys.operations` (no store, no service), so that
clients can check a user id without importing the key service.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from strongroom.crypto.blob import MAX_USER_ID_BYTES
from strongroom.crypto.wrap import key_identity, wrap_key
from strongroom.errors import ValidationError
from strongroom.kms.records import KeyRecord


def user_key_name(key_id: str, user_id: str) -> str:
    """Store name of a user key row."""
    return f"{key_id}/{user_id}"


def check_user_id(user_id: object) -> str:
    """Return ``user_id`` if it is 1-256 bytes of UTF-8 without NUL; else ValidationError."""
    if isinstance(user_id, str) and "\x00" not in user_id:
        try:
            size = len(user_id.encode("utf-8"))
        except UnicodeEncodeError:
            size = 0
        if 1 <= size <= MAX_USER_ID_BYTES:
            return user_id
    raise ValidationError(
        "1 validation error detected: Value at 'userId' failed to satisfy constraint: "
        f"Member must be 1 to {MAX_USER_ID_BYTES} bytes of UTF-8 without NUL characters"
    )


def user_identities(key: KeyRecord, version: int) -> Callable[[str], bytes]:
    """``user id -> key_identity("userkey", account, key id, user id, version)``.

    ``key_identity`` length-prefixes each part and concatenates, so the fixed parts are
    encoded once (a batch of a million keys shares them).
    """
    head = key_identity("userkey", key.account_id, key.key_id)
    tail = key_identity(version)
    return lambda user_id: head + key_identity(user_id) + tail


def new_user_key(
    wrapping: bytes, identity: bytes, user_id: str, version: int, secret: bytes, now: float
) -> bytes:
    """The stored bytes of a new user key: ``UserKeyRecord.to_bytes()``, built directly."""
    wrapped = wrap_key(wrapping, secret, identity)
    return json.dumps(
        {
            "created_at": now,
            "key_version": version,
            "user_id": user_id,
            "wrapped_material": {"$b64": base64.b64encode(wrapped).decode("ascii")},
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
