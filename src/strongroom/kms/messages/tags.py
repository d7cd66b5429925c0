"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.tags`.

Operations: ListResourceTags, TagResource, UntagResource.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from strongroom.kms.messages.shared import Tag


class ListResourceTagsRequest(NamedTuple):
    """Request of ``ListResourceTags``."""

    key_id: str
    limit: int | None = None
    marker: str | None = None


class ListResourceTagsResponse(NamedTuple):
    """Response of ``ListResourceTags``."""

    next_marker: str | None = None
    tags: Sequence[Tag] | None = None
    truncated: bool | None = None


class TagResourceRequest(NamedTuple):
    """Request of ``TagResource``."""

    key_id: str
    tags: Sequence[Tag]


class UntagResourceRequest(NamedTuple):
    """Request of ``UntagResource``."""

    key_id: str
    tag_keys: Sequence[str]
