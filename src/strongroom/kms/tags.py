"""Tag rules of AWS KMS: keys 1-128 characters, values 0-256, no ``aws:`` prefix, 50 tags."""

from __future__ import annotations

from typing import Any

from strongroom.errors import TagError

MAX_TAGS = 50


def check_tags(tags: list[dict[str, Any]]) -> dict[str, str]:
    """Validate a TagList and return it as a dict; raise :class:`TagError` if it breaks a rule."""
    out: dict[str, str] = {}
    for tag in tags:
        key, value = tag["TagKey"], tag["TagValue"]
        if key.lower().startswith("aws:"):
            raise TagError(f"Tag key {key!r} uses the reserved prefix 'aws:'.")
        if key in out and out[key] != value:
            raise TagError(f"Duplicate tag key {key!r} with different values.")
        out[key] = value
    if len(out) > MAX_TAGS:
        raise TagError(f"A key can have at most {MAX_TAGS} tags.")
    return out
