"""What the paths of ``backup mount`` name: places, open files, inode numbers, time names.

Helpers of :class:`~strongroom.backup.mountfs.SnapshotFS` that hold no state.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

from strongroom.backup.repository import parse_time
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.tree import Node


def inode_of(*parts: str) -> int:
    """A stable inode number for a path (63 bits, never 0 or 1)."""
    digest = hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogateescape"), digest_size=8)
    return (int.from_bytes(digest.digest(), "big") >> 1) | 2


@dataclass(frozen=True, slots=True)
class Place:
    """What a path names: a virtual directory, a snapshot's root, or a node in a snapshot."""

    kind: str  # "dir" (virtual), "link" (virtual symlink), "root", "node"
    snapshot: Snapshot | None = None
    node: Node | None = None
    inode_path: str = ""
    target: str = ""


@dataclass(slots=True)
class OpenFile:
    """An open file: where each of its content items starts."""

    node: Node
    starts: list[int] = field(default_factory=list)


def snapshot_names(snapshots: list[Snapshot]) -> dict[str, Snapshot]:
    """Each snapshot by its time (``2026-01-02T03:04:05Z``), ``-1``, ``-2``... on clashes."""
    names: dict[str, Snapshot] = {}
    for s in snapshots:
        base = parse_time(s.time).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = base
        for n in itertools.count(1):
            if name not in names:
                break
            name = f"{base}-{n}"
        names[name] = s
    return names
