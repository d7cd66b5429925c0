"""What ``backup mount`` shows: the snapshots, kept fresh, and each path resolved to a place.

:class:`SnapshotView` holds the snapshot list (as the virtual directories of
:func:`~strongroom.backup.mountpaths.snapshot_dirs`: by time, short id, host, tag), the
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
from strongroom.backup.mountpaths import Listing, Place, snapshot_dirs
from strongroom.backup.repository import Repository
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.timenames import RESTIC_TIMES, TimeTemplate
from strongroom.backup.tree import Node
from strongroom.errors import StrongroomError

TREE_CACHE = 4096


def fail(code: int) -> OSError:
    """The ``OSError`` FUSE turns into ``-code``."""
    return OSError(code, os.strerror(code))


class SnapshotView:
    """One repository's snapshots as the mount presents them (thread-safe).

    ``report`` is told, in a line, why a later refresh failed (the view keeps what it
    showed); the first load raises what the repository raises. ``select`` picks the
    snapshots shown (``--host``, ``--tag``, ``--path``); by default all. ``times`` names
    a snapshot by its time (``--time-template``).
    """

    def __init__(
        self,
        repo: Repository,
        *,
        clock: Callable[[], float],
        refresh_seconds: float,
        report: Callable[[str], None],
        select: Callable[[Snapshot], bool] | None = None,
        times: TimeTemplate = RESTIC_TIMES,
    ) -> None:
        self.repo = repo
        self._select = select
        self._times = times
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._report = report
        self._lock = threading.RLock()
        self._loaded_at = -1.0e18
        self._index = Index()
        self._shown: set[str] = set()  # the ids of the snapshots shown
        self._dirs: dict[str, Listing] = {}
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
            found = self.repo.snapshots()  # all read: one deleted unforgotten still fails
            if self._select is not None:
                found = [s for s in found if self._select(s)]
            ids = {s.id for s in found}
            if force or ids != self._shown:
                self._index = self.repo.load_index()  # new snapshots bring new packs
            self._dirs = snapshot_dirs(found, self._times)
            self._shown = ids
            self._loaded_at = self._clock()

    def listing(self, path: str) -> Listing:
        """The virtual directory at ``path`` (``/``, ``/snapshots``, ``/hosts/<host>``...).

        ``ENOENT`` if a refresh took it away meanwhile (a host's last snapshot forgotten).
        """
        with self._lock:
            found = self._dirs.get(path)
        if found is None:
            raise fail(errno.ENOENT)
        return found

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
        if len(parts) <= 3:
            self.refresh()  # a virtual directory or a latest link: show new snapshots
        with self._lock:
            here, i = "/", 0
            while True:
                listing = self._dirs[here]
                if i == len(parts):
                    return Place("dir", listing.newest, inode_path=here)
                name = parts[i]
                if name in listing.subdirs:
                    here, i = f"{here.rstrip('/')}/{name}", i + 1
                    continue
                if name == "latest" and listing.latest:
                    if i + 1 == len(parts):
                        return Place(
                            "link",
                            listing.newest,
                            inode_path=f"{here}/latest",
                            target=listing.latest,
                        )
                    name = listing.latest
                snapshot = listing.snapshots.get(name)
                if snapshot is None:
                    raise fail(errno.ENOENT)
                rest = parts[i + 1 :]
                break
        if not rest:
            return Place("root", snapshot, inode_path=snapshot.id)
        node = self._walk(snapshot, rest)
        if node.type == "hardlink":
            assert node.link is not None
            first = self._walk(snapshot, [p for p in node.link.split("/") if p])
            if first.type != "file":
                raise fail(errno.EIO)
            return Place("node", snapshot, first, f"{snapshot.id}/{node.link}")
        return Place("node", snapshot, node, f"{snapshot.id}/{'/'.join(rest)}")
