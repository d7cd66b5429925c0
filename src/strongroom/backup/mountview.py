"""What ``backup mount`` shows: the snapshots, kept fresh, and each path resolved to a place.

:class:`SnapshotView` holds the snapshot list (by time, by short id, the newest), the
index that goes with it and a bounded cache of trees, and turns a mount path into a
:class:`~strongroom.backup.mountpaths.Place`. The FUSE operations over it are
:class:`~strongroom.backup.mountfs.SnapshotFS`. A path that names nothing raises
``OSError(ENOENT)`` (``ENOTDIR``, ``EIO``), the errors FUSE passes to the caller.
"""

from __future__ import annotations

import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

from strongroom.backup.index import Index
from strongroom.backup.mountpaths import Place, snapshot_names
from strongroom.backup.repository import Repository
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.tree import Node
from strongroom.errors import StrongroomError

TREE_CACHE = 4096


def fail(code: int) -> OSError:
    """The ``OSError`` FUSE turns into ``-code``."""
    return OSError(code, os.strerror(code))


class SnapshotView:
    """One repository's snapshots as the mount presents them (thread-safe).

    ``report`` is told, in a line, why a later refresh failed (the view keeps what it
    showed); the first load raises what the repository raises.
    """

    def __init__(
        self,
        repo: Repository,
        *,
        clock: Callable[[], float],
        refresh_seconds: float,
        report: Callable[[str], None],
    ) -> None:
        self.repo = repo
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._report = report
        self._lock = threading.RLock()
        self._loaded_at = -1.0e18
        self._index = Index()
        self._by_time: dict[str, Snapshot] = {}
        self._by_id: dict[str, Snapshot] = {}
        self._latest = ""
        self._trees: OrderedDict[bytes, dict[str, Node]] = OrderedDict()
        self.refresh(force=True)

    @property
    def index(self) -> Index:
        """The index of the snapshots shown."""
        return self._index

    def refresh(self, force: bool = False) -> None:
        """Reload the snapshot list (and the index, if it changed) when it is stale.

        The first load (``force``) raises what the repository raises; a later one that
        fails (a snapshot tampered with meanwhile, the KMS unreachable) keeps the snapshots
        already shown, reports why and is tried again after the interval.
        """
        with self._lock:
            if not force and self._clock() - self._loaded_at < self._refresh_seconds:
                return
            try:
                self._reload(force)
            except StrongroomError as exc:
                if force:
                    raise
                self._loaded_at = self._clock()
                self._report(f"the snapshot list was not refreshed: {exc}")

    def _reload(self, force: bool) -> None:
        with self._lock:
            found = self.repo.snapshots()
            if force or {s.id for s in found} != {s.id for s in self._by_id.values()}:
                self._index = self.repo.load_index()  # new snapshots bring new packs
            self._by_time = snapshot_names(found)
            self._by_id = {s.id[:12]: s for s in found}
            self._latest = next(reversed(self._by_time), "")
            self._loaded_at = self._clock()

    def listing(self, top: str) -> tuple[dict[str, Snapshot], str]:
        """The snapshots under ``/snapshots`` (by time) or ``/ids``, and the newest's name."""
        with self._lock:
            table = self._by_time if top == "/snapshots" else self._by_id
            return dict(table), self._latest

    def children(self, tree_id: bytes) -> dict[str, Node]:
        """A tree's nodes by name (cached, least recently used dropped first)."""
        with self._lock:
            found = self._trees.get(tree_id)
            if found is not None:
                self._trees.move_to_end(tree_id)
                return found
            index = self._index
        nodes = {n.name: n for n in self.repo.load_tree(index, tree_id)}
        with self._lock:
            self._trees[tree_id] = nodes
            while len(self._trees) > TREE_CACHE:
                self._trees.popitem(last=False)
        return nodes

    def _walk(self, snapshot: Snapshot, parts: list[str]) -> Node:
        tree: bytes | None = snapshot.tree
        node: Node | None = None
        for part in parts:
            if tree is None:
                raise fail(errno.ENOTDIR)
            node = self.children(tree).get(part)
            if node is None:
                raise fail(errno.ENOENT)
            tree = node.subtree if node.type == "dir" else None
        assert node is not None
        return node

    def place(self, path: str) -> Place:
        """What ``path`` names (a hard link resolves to its first name's file)."""
        parts = [p for p in path.split("/") if p]
        if len(parts) <= 1:
            if not parts or parts[0] in ("snapshots", "ids"):
                self.refresh()
                return Place("dir", inode_path="/" + "/".join(parts))
            raise fail(errno.ENOENT)
        with self._lock:
            table = self._by_time if parts[0] == "snapshots" else self._by_id
            if parts[0] == "snapshots" and parts[1] == "latest" and self._latest:
                if len(parts) == 2:
                    return Place("link", inode_path="/snapshots/latest", target=self._latest)
                parts[1] = self._latest
            snapshot = table.get(parts[1]) if parts[0] in ("snapshots", "ids") else None
        if snapshot is None:
            raise fail(errno.ENOENT)
        if len(parts) == 2:
            return Place("root", snapshot, inode_path=snapshot.id)
        rel = "/".join(parts[2:])
        node = self._walk(snapshot, parts[2:])
        if node.type == "hardlink":
            assert node.link is not None
            first = self._walk(snapshot, [p for p in node.link.split("/") if p])
            if first.type != "file":
                raise fail(errno.EIO)
            return Place("node", snapshot, first, f"{snapshot.id}/{node.link}")
        return Place("node", snapshot, node, f"{snapshot.id}/{rel}")
