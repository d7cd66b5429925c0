"""Tag rules of AWS KMS: keys 1-128 characters, values 0-256, no ``aws:`` prefix, 50 tags.

The messages are AWS KMS's own, word for word (``TagException``).
"""

from __future__ import annotations

from collections.abc import Iterable

from strongroom.errors import TagError
from strongroom.kms.messages.shared import Tag

MAX_TAGS = 50
RESERVED = "Tags beginning with aws: are reserved"


def check_tags(tags: Iterable[Tag]) -> dict[str, str]:
    """Validate a TagList and return it as a dict; raise :class:`TagError` if it breaks a rule."""
    out: dict[str, str] = {}
    for tag in tags:
        key, value = tag.tag_key, tag.tag_value
        if key.lower().startswith("aws:"):
            raise TagError(RESERVED)
        if key in out:
            raise TagError("Duplicate tag keys")
        out[key] = value
    if len(out) > MAX_TAGS:
        raise TagError("Too many tags")
    return out
