"""Snapshots (format v1): one backup's root tree and description, sealed under its session.

Body: canonical JSON (sorted keys, no spaces), sealed as kind ``S`` under the data
secret of the ``create`` run that wrote it; the file is ``snapshots/<SHA-256 of it>``::

    {"v": 1, "time": "2026-01-02T03:04:05.123456Z", "hostname": str, "username": str,
     "paths": [str], "name": str | null, "tags": [str], "tree": hex root tree id,
     "summary": {...counts...}, "retain_until": RFC 3339 | null,
     "known": [hex ids of the snapshots present when this one was made]}

``known`` chains snapshots: one deleted without ``forget`` (which leaves a sealed
tombstone) is missed by every later snapshot that knew it.

The root tree holds one node per backed-up path, named by its last component (or by
``name`` for stdin), so ``--path data/file`` picks one file or subtree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from strongroom.backup.errors import CorruptError

VERSION = 1
_CORRUPT = "A snapshot is corrupt."


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot's description; ``id`` (hex) is the file's name, set when read or written."""

    time: str
    hostname: str
    username: str
    paths: tuple[str, ...]
    tree: bytes
    name: str | None = None
    tags: tuple[str, ...] = ()
    summary: dict[str, int] = field(default_factory=dict)
    retain_until: str | None = None
    known: tuple[str, ...] = ()
    id: str = ""

    def encode(self) -> bytes:
        """The canonical body."""
        doc = {
            "v": VERSION,
            "time": self.time,
            "hostname": self.hostname,
            "username": self.username,
            "paths": list(self.paths),
            "name": self.name,
            "tags": list(self.tags),
            "tree": self.tree.hex(),
            "summary": dict(self.summary),
            "retain_until": self.retain_until,
            "known": sorted(self.known),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(
            "utf-8", "surrogateescape"
        )

    @classmethod
    def decode(cls, body: bytes, snapshot_id: str) -> Snapshot:
        """Parse a body; :class:`CorruptError` if it is not a v1 snapshot."""
        try:
            doc: Any = json.loads(body.decode("utf-8", "surrogateescape"))
            if not isinstance(doc, dict) or doc["v"] != VERSION:
                raise CorruptError(_CORRUPT)
            tree = bytes.fromhex(doc["tree"])
            if len(tree) != 32:
                raise CorruptError(_CORRUPT)
            return cls(
                time=str(doc["time"]),
                hostname=str(doc["hostname"]),
                username=str(doc["username"]),
                paths=tuple(str(p) for p in doc["paths"]),
                tree=tree,
                name=None if doc["name"] is None else str(doc["name"]),
                tags=tuple(str(t) for t in doc["tags"]),
                summary={str(k): int(v) for k, v in doc["summary"].items()},
                retain_until=None if doc["retain_until"] is None else str(doc["retain_until"]),
                known=tuple(_snapshot_id(k) for k in doc["known"]),
                id=snapshot_id,
            )
        except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as exc:
            raise CorruptError(_CORRUPT) from exc


def _snapshot_id(raw: Any) -> str:
    if not isinstance(raw, str) or len(raw) != 64 or bytes.fromhex(raw).hex() != raw:
        raise CorruptError(_CORRUPT)
    return raw
