"""Tags on keys: TagResource, UntagResource, ListResourceTags."""

from __future__ import annotations

from typing import Any

from strongroom.errors import TagError
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.ops.keys import page, update_key
from strongroom.kms.records import KeyRecord
from strongroom.kms.tags import MAX_TAGS, RESERVED, check_tags


def tag_resource(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Add or overwrite tags on a key."""
    new = check_tags(req["Tags"])

    def change(key: KeyRecord) -> KeyRecord:
        merged = {**key.tags, **new}
        if len(merged) > MAX_TAGS:
            raise TagError("Too many tags")
        return key.replace(tags=merged)

    update_key(k, ctx, req, "manage", "TagResource", change)
    return {}


def untag_resource(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """Remove tags from a key (never ``aws:`` tags, which are reserved)."""
    drop = set(req["TagKeys"])
    for tag_key in sorted(drop):
        if tag_key.lower().startswith("aws:"):
            raise TagError(RESERVED)
    update_key(
        k,
        ctx,
        req,
        "manage",
        "UntagResource",
        lambda key: key.replace(tags={a: b for a, b in key.tags.items() if a not in drop}),
    )
    return {}


def list_resource_tags(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """List a key's tags sorted by tag key."""
    key = k.read(lambda tx: k.resolve_key(tx, ctx, req["KeyId"]))
    k.read(lambda tx: k.authorize(tx, ctx, key, "ListResourceTags"))
    marker = req.get("Marker")
    items = sorted((t, v) for t, v in key.tags.items() if marker is None or t > marker)
    shown, truncated = page(items, req.get("Limit"), default=50)
    response: dict[str, Any] = {
        "Tags": [{"TagKey": k, "TagValue": v} for k, v in shown],
        "Truncated": truncated,
    }
    if truncated:
        response["NextMarker"] = shown[-1][0]
    return response
