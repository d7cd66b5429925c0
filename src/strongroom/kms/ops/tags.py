"""Tags on keys: TagResource, UntagResource, ListResourceTags."""

from __future__ import annotations

from strongroom.errors import TagError
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.messages.shared import Tag
from strongroom.kms.messages.tags import (
    ListResourceTagsRequest,
    ListResourceTagsResponse,
    TagResourceRequest,
    UntagResourceRequest,
)
from strongroom.kms.ops.keys import page, update_key
from strongroom.kms.records import KeyRecord
from strongroom.kms.tags import MAX_TAGS, RESERVED, check_tags


def tag_resource(k: Kernel, ctx: OpContext, req: TagResourceRequest) -> None:
    """Add or overwrite tags on a key."""
    new = check_tags(req.tags)

    def change(key: KeyRecord) -> KeyRecord:
        merged = {**key.tags, **new}
        if len(merged) > MAX_TAGS:
            raise TagError("Too many tags")
        return key.replace(tags=merged)

    update_key(k, ctx, req.key_id, "manage", "TagResource", change)


def untag_resource(k: Kernel, ctx: OpContext, req: UntagResourceRequest) -> None:
    """Remove tags from a key (never ``aws:`` tags, which are reserved)."""
    drop = set(req.tag_keys)
    for tag_key in sorted(drop):
        if tag_key.lower().startswith("aws:"):
            raise TagError(RESERVED)
    update_key(
        k,
        ctx,
        req.key_id,
        "manage",
        "UntagResource",
        lambda key: key.replace(tags={a: b for a, b in key.tags.items() if a not in drop}),
    )


def list_resource_tags(
    k: Kernel, ctx: OpContext, req: ListResourceTagsRequest
) -> ListResourceTagsResponse:
    """List a key's tags sorted by tag key."""
    key = k.read(lambda tx: k.resolve_key(tx, ctx, req.key_id))
    k.read(lambda tx: k.authorize(tx, ctx, key, "ListResourceTags"))
    marker = req.marker
    items = sorted((t, v) for t, v in key.tags.items() if marker is None or t > marker)
    shown, truncated = page(items, req.limit, default=50)
    return ListResourceTagsResponse(
        next_marker=shown[-1][0] if truncated else None,
        tags=tuple(Tag(tag_key=t, tag_value=v) for t, v in shown),
        truncated=truncated,
    )
