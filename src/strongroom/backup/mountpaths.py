"""What the paths of ``backup mount`` name: places, open files, inode numbers, time names.

Helpers of :class:`~strongroom.backup.mountfs.SnapshotFS` that hold no state, and the
virtual directories over the snapshots (:func:`snapshot_dirs`), laid out as ``restic
mount``'s default path templates are::

    /ids/<12-hex id>                 every snapshot by its short id
    /snapshots/<time>, latest        every snapshot by its time; latest -> the newest
    /hosts/<host>/<time>, latest     the snapshots of each host
    /tags/<tag>/<time>, latest       the snapshots of each tag (one with two tags is in both)
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from strongroom.backup.repository import parse_time
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.timenames import RESTIC_TIMES, TimeTemplate
from strongroom.backup.tree import Node


def inode_of(*parts: str) -> int:
    """A stable inode number for a path (63 bits, never 0 or 1)."""
    digest = hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogateescape"), digest_size=8)
    return (int.from_bytes(digest.digest(), "big") >> 1) | 2


def node_inode(snapshot_id: str, node: Node, path: str) -> int:
    """A node's inode number (a hard link's is one number for all of its names).

    A hard link's comes from its recorded device and inode, any other node's from its
    path in the snapshot. ``path`` is the node's path, or a hard link's first name
    (``<snapshot id>/<rel>``): snapshots made before device and inode were recorded
    share one number that way.
    """
    if node.inode:
        return inode_of(snapshot_id, str(node.device), str(node.inode))
    return inode_of(path)


@dataclass(frozen=True, slots=True)
class Place:
    """What a path names: a virtual directory, a snapshot's root, or a node in a snapshot."""

    kind: str  # "dir" (virtual), "link" (virtual symlink: latest), "root", "node"
    snapshot: Snapshot | None = None
    node: Node | None = None
    inode_path: str = ""
    target: str = ""


@dataclass(slots=True)
class OpenFile:
    """An open file: where each of its content items starts."""

    node: Node
    starts: list[int] = field(default_factory=list)


def snapshot_names(
    snapshots: list[Snapshot], times: TimeTemplate = RESTIC_TIMES
) -> dict[str, Snapshot]:
    """Each snapshot by its time (``2026-01-02T03:04:05Z``), ``-1``, ``-2``... on clashes."""
    names: dict[str, Snapshot] = {}
    for s in snapshots:
        base = times.name(parse_time(s.time))
        name = base
        for n in itertools.count(1):
            if name not in names:
                break
            name = f"{base}-{n}"
        names[name] = s
    return names


TOP = ("ids", "snapshots", "hosts", "tags")


@dataclass(slots=True)
class Listing:
    """A virtual directory: its subdirectories, its snapshots by name, its ``latest``."""

    subdirs: list[str] = field(default_factory=list)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    latest: str = ""  # the name of the newest snapshot ("": no latest link here)
    newest: Snapshot | None = None  # its time is the directory's time


def filename_of(text: str) -> str:
    """A host or tag as one file name, as restic makes it (``/`` -> ``_``, ``""`` -> ``_``)."""
    if text in ("", "."):
        return "_"
    if text == "..":
        return "__"
    return text.replace("/", "_").replace("\0", "_")


def _timed(snapshots: list[Snapshot], times: TimeTemplate) -> Listing:
    named = snapshot_names(snapshots, times)
    latest = next(reversed(named), "")
    return Listing([], named, latest, named.get(latest))


def _grouped(keys: Iterable[tuple[str, Snapshot]], times: TimeTemplate) -> dict[str, Listing]:
    groups: dict[str, list[Snapshot]] = {}
    for key, s in keys:
        group = groups.setdefault(filename_of(key), [])
        if not group or group[-1] is not s:  # two tags that make one name: listed once
            group.append(s)
    return {name: _timed(group, times) for name, group in sorted(groups.items())}


def snapshot_dirs(
    snapshots: list[Snapshot], times: TimeTemplate = RESTIC_TIMES
) -> dict[str, Listing]:
    """Every virtual directory by its path (``/``, ``/ids``, ``/hosts/<host>``...).

    ``snapshots`` come oldest first; ``latest`` in a directory names its newest snapshot;
    ``times`` names a snapshot by its time (``--time-template``).
    """
    newest = snapshots[-1] if snapshots else None
    hosts = _grouped(((s.hostname, s) for s in snapshots), times)
    tags = _grouped(((t, s) for s in snapshots for t in s.tags), times)
    dirs: dict[str, Listing] = {
        "/": Listing(list(TOP), newest=newest),
        "/ids": Listing([], {s.id[:12]: s for s in snapshots}, "", newest),
        "/snapshots": _timed(snapshots, times),
        "/hosts": Listing(list(hosts), newest=newest),
        "/tags": Listing(list(tags), newest=newest),
    }
    dirs.update((f"/hosts/{name}", listing) for name, listing in hosts.items())
    dirs.update((f"/tags/{name}", listing) for name, listing in tags.items())
    return dirs
