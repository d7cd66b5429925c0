"""What names an object: object names, tenants, and the context entries the store reserves.

Names are 1 to 1024 bytes of UTF-8 without NUL, ``/``-separated segments of 1 to 250
bytes. A tenant is 1-64 of ``A-Z a-z 0-9 . _ -`` (first alphanumeric). Context keys
starting ``strongroom:`` are the store's: the tenant (sent to the key service), and in a
stream header the object's name and version (not sent: one data key may serve many
objects). Used by :mod:`.objects`, :mod:`.object_index` and ``strongroom decrypt``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import suppress

from strongroom.errors import ValidationError

RESERVED_PREFIX = "strongroom:"
"""Context keys the store sets itself; callers' contexts may not use it."""
OBJECT_KEY = "strongroom:object"
"""Header context entry naming the object (not sent to the key service)."""
TENANT_KEY = "strongroom:tenant"
"""Context entry naming the tenant (sent to the key service too)."""
VERSION_KEY = "strongroom:version"
"""Header context entry with the object's version (not sent to the key service)."""
MAX_NAME_BYTES = 1024
MAX_SEGMENT_BYTES = 250
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid object name, else :class:`ValidationError`."""
    if isinstance(name, str) and "\x00" not in name:
        with suppress(UnicodeEncodeError):
            encoded = name.encode("utf-8")
            segments = encoded.split(b"/")
            if 1 <= len(encoded) <= MAX_NAME_BYTES and all(
                1 <= len(s) <= MAX_SEGMENT_BYTES for s in segments
            ):
                return name
    raise ValidationError(
        f"Object names are 1 to {MAX_NAME_BYTES} bytes of UTF-8 without NUL: '/'-separated "
        f"segments of 1 to {MAX_SEGMENT_BYTES} bytes."
    )


def check_tenant(tenant: object) -> str:
    """Return ``tenant`` if it is 1-64 of ``A-Z a-z 0-9 . _ -`` (first alphanumeric)."""
    if isinstance(tenant, str) and _TENANT.fullmatch(tenant):
        return tenant
    raise ValidationError("A tenant is 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'.")


def check_user_context(context: Mapping[str, str] | None) -> dict[str, str]:
    """A caller's encryption context as a dict; reserved keys are refused."""
    result = dict(context or {})
    for key, value in result.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValidationError("Encryption context keys and values are strings.")
        if key.startswith(RESERVED_PREFIX):
            raise ValidationError(f"Encryption context keys starting {RESERVED_PREFIX!r} are ours.")
    return result


def kms_context_of(header_context: Mapping[str, str]) -> dict[str, str]:
    """The context the key service saw for a stream: the header's, minus name and version."""
    return {k: v for k, v in header_context.items() if k not in (OBJECT_KEY, VERSION_KEY)}


def caller_context_of(header_context: Mapping[str, str]) -> dict[str, str]:
    """The caller's own part of a stream's context: without the reserved entries."""
    return {k: v for k, v in header_context.items() if not k.startswith(RESERVED_PREFIX)}
