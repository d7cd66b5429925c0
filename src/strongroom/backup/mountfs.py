"""``backup mount``: a repository's snapshots as a read-only filesystem (FUSE operations).

:class:`SnapshotFS` is the operations object the FUSE loop calls (``getattr``,
``readdir``, ``readlink``, ``open``, ``read``...; the method names and signatures of
`mfusepy`_), with no FUSE import of its own, so it is tested by calling it directly. The
snapshots and what each path names are :class:`~strongroom.backup.mountview.SnapshotView`'s.
The tree it presents, like ``restic mount``::

    /ids/<12-hex id>/...            every snapshot by its short id
    /snapshots/<time>/...           every snapshot by its time ("-1", "-2"... on clashes)
    /snapshots/latest -> <time>     the newest snapshot
    /hosts/<host>/<time>, latest    the same per host
    /tags/<tag>/<time>, latest      the same per tag

File bytes come only through :class:`~strongroom.backup.blobcache.VerifiedBlobs`: each
chunk is decrypted (AES-GCM binds it to its pack, place and id), decompressed and checked
against its keyed id before any byte of it is served; a chunk that fails reads as
``EIO``. Holes of sparse files read as zeros; a hard link shows its first name's content
under one inode number, with the link count recorded. New snapshots appear after
:data:`REFRESH_SECONDS`.

.. _mfusepy: https://pypi.org/project/mfusepy/
"""

from __future__ import annotations

import bisect
import errno
import itertools
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from strongroom.backup.blobcache import BLOB_CACHE_BYTES, VerifiedBlobs
from strongroom.backup.mountpaths import OpenFile, inode_of, node_inode
from strongroom.backup.mountview import SnapshotView, fail
from strongroom.backup.repository import Repository, parse_time
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.timenames import RESTIC_TIMES, TimeTemplate
from strongroom.errors import StrongroomError

REFRESH_SECONDS = 30.0
DIR_MODE = stat.S_IFDIR | 0o555
_KINDS = {
    "dir": stat.S_IFDIR,
    "file": stat.S_IFREG,
    "hardlink": stat.S_IFREG,
    "symlink": stat.S_IFLNK,
    "fifo": stat.S_IFIFO,
    "chardev": stat.S_IFCHR,
    "blockdev": stat.S_IFBLK,
    "socket": stat.S_IFSOCK,
}
T = TypeVar("T")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class SnapshotFS:
    """FUSE operations over one repository's snapshots (read-only, thread-safe).

    ``select`` picks the snapshots shown (default: all); ``owner_root`` shows every file
    as root's (restic's ``--owner-root``) instead of the owners the snapshot recorded;
    ``times`` names snapshots by their times (``--time-template``, by default restic's).
    """

    use_ns = True  # mfusepy: times are nanoseconds

    def __init__(
        self,
        repo: Repository,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
        blob_cache_bytes: int = BLOB_CACHE_BYTES,
        on_mounted: Callable[[], None] | None = None,
        select: Callable[[Snapshot], bool] | None = None,
        owner_root: bool = False,
        times: TimeTemplate = RESTIC_TIMES,
    ) -> None:
        self.repo = repo
        self._on_mounted = on_mounted
        self._lock = threading.Lock()
        self._view = SnapshotView(
            repo,
            clock=clock,
            refresh_seconds=refresh_seconds,
            report=self._report,
            select=select,
            times=times,
        )
        self._owner_root = owner_root  # restic's --owner-root: everything owned by root
        self._verified = VerifiedBlobs(repo, cache_bytes=blob_cache_bytes)
        self._files: dict[int, OpenFile] = {}
        self._handles = itertools.count(1)
        self._uid, self._gid = (0, 0) if owner_root else (os.getuid(), os.getgid())
        self._mounted_ns = time.time_ns()  # the times of the virtual directories

    # -- FUSE operations ----------------------------------------------------------------

    def init(self, path: str) -> None:
        """Called by libfuse once the filesystem is mounted and serving."""
        if self._on_mounted is not None:
            self._on_mounted()

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        """``stat`` of ``path`` (times in nanoseconds).

        As ``restic mount`` shows them: a directory's link count is 2 plus its
        subdirectories; each name of a hard link has the file's link count and one inode
        number (as the snapshot recorded them); ``st_blocks`` counts what is stored (a
        sparse file's holes take none). Extended attributes: :meth:`listxattr`.
        """
        place = self._guard(self._view.place, path)
        attrs: dict[str, Any] = {
            "st_ino": inode_of(place.inode_path),
            "st_nlink": 1,
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_size": 0,
        }
        if place.kind != "node":
            ns = self._mounted_ns
            if place.snapshot is not None:
                ns = int(parse_time(place.snapshot.time).timestamp() * 1e9)
            attrs.update(st_mode=DIR_MODE, st_mtime=ns, st_atime=ns, st_ctime=ns)
            if place.kind == "link":
                attrs.update(st_mode=stat.S_IFLNK | 0o777, st_size=len(place.target))
            elif place.kind == "dir":
                listing = self._view.listing(place.inode_path)
                attrs["st_nlink"] = 2 + len(listing.subdirs) + len(listing.snapshots)
            else:
                assert place.snapshot is not None
                attrs["st_nlink"] = self._dir_links(place.snapshot.tree)
            return attrs
        node = place.node
        assert node is not None
        size = node.size
        if node.type == "symlink":
            mode = stat.S_IFLNK | 0o777
            size = len((node.target or "").encode("utf-8", "surrogateescape"))
        else:  # the snapshot's permissions without write bits: nothing here is writable
            mode = _KINDS[node.type] | (node.mode & ~0o222)
        if node.type == "dir":
            assert node.subtree is not None
            links = self._dir_links(node.subtree)
        else:
            links = max(node.links, 1)
        assert place.snapshot is not None
        attrs["st_ino"] = node_inode(place.snapshot.id, node, place.inode_path)
        stored = size - sum(c for c in node.content if isinstance(c, int))  # holes
        attrs.update(
            st_mode=mode,
            st_nlink=links,
            st_uid=self._uid if self._owner_root else node.uid,
            st_gid=self._gid if self._owner_root else node.gid,
            st_size=size,
            st_rdev=node.rdev,
            st_blocks=(stored + 511) // 512,
            st_mtime=node.mtime_ns,
            st_atime=node.mtime_ns,
            st_ctime=node.mtime_ns,
        )
        return attrs

    def readdir(self, path: str, fh: int | None = None) -> list[tuple[str, dict[str, int], int]]:
        """A directory's entries: ``(name, {st_ino, st_mode}, 0)``, ``.`` and ``..`` first.

        Each entry carries its inode number: with ``use_ino`` libfuse passes it on, and
        ``readdir(3)`` skips entries whose inode number is 0.
        """
        place = self._guard(self._view.place, path)
        here = inode_of(place.inode_path)
        parts = [p for p in path.split("/") if p]
        up = here  # ".." of the root is the root
        if parts:
            up = inode_of(self._guard(self._view.place, "/".join(parts[:-1])).inode_path)
        entries = [(".", here, DIR_MODE), ("..", up, DIR_MODE)]
        if place.kind == "dir":
            top = place.inode_path
            listing = self._view.listing(top)
            prefix = top.rstrip("/")
            entries += [(n, inode_of(f"{prefix}/{n}"), DIR_MODE) for n in listing.subdirs]
            entries += [(n, inode_of(s.id), DIR_MODE) for n, s in listing.snapshots.items()]
            if listing.latest:
                entries.append(("latest", inode_of(f"{prefix}/latest"), stat.S_IFLNK | 0o777))
        else:
            if place.kind == "root":
                assert place.snapshot is not None
                tree = place.snapshot.tree
            elif place.node is not None and place.node.type == "dir":
                assert place.node.subtree is not None
                tree = place.node.subtree
            else:
                raise fail(errno.ENOTDIR)
            assert place.snapshot is not None
            snapshot_id = place.snapshot.id
            for name, node in sorted(self._guard(self._view.children, tree).items()):
                if node.type == "hardlink":
                    ino = node_inode(snapshot_id, node, f"{snapshot_id}/{node.link}")
                    entries.append((name, ino, stat.S_IFREG))
                elif node.type == "file":
                    ino = node_inode(snapshot_id, node, f"{place.inode_path}/{name}")
                    entries.append((name, ino, stat.S_IFREG))
                else:
                    ino = inode_of(f"{place.inode_path}/{name}")
                    entries.append((name, ino, _KINDS[node.type]))
        return [(name, {"st_ino": ino, "st_mode": mode}, 0) for name, ino, mode in entries]

    def listxattr(self, path: str) -> list[str]:
        """The names of a node's extended attributes, as the snapshot recorded them."""
        node = self._guard(self._view.place, path).node
        return sorted(node.xattrs) if node is not None else []

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """One extended attribute's value (``ENODATA`` if the node has none of that name)."""
        node = self._guard(self._view.place, path).node
        value = node.xattrs.get(name) if node is not None else None
        if value is None:
            raise fail(errno.ENODATA)
        return value

    def readlink(self, path: str) -> str:
        """A symbolic link's target."""
        place = self._guard(self._view.place, path)
        if place.kind == "link":
            return place.target
        if place.node is None or place.node.type != "symlink" or place.node.target is None:
            raise fail(errno.EINVAL)
        return place.node.target

    def open(self, path: str, flags: int) -> int:
        """A handle for reading a file (``EROFS`` for any write access)."""
        if flags & _WRITE_FLAGS:
            raise fail(errno.EROFS)
        place = self._guard(self._view.place, path)
        node = place.node
        if node is None or node.type != "file":
            is_dir = place.kind == "root" or (node is not None and node.type == "dir")
            raise fail(errno.EISDIR if is_dir else errno.EINVAL)
        starts: list[int] = []
        offset = 0
        for item in node.content:
            starts.append(offset)
            if isinstance(item, int):
                offset += item
                continue
            location = self._view.index.get(item)
            if location is None:
                self._report(f"{path}: a chunk is missing from the repository")
                raise fail(errno.EIO)
            offset += location.entry.plain_length
        if offset != node.size:
            self._report(f"{path}: its chunks do not add up to its size")
            raise fail(errno.EIO)
        with self._lock:
            handle = next(self._handles)
            self._files[handle] = OpenFile(node, starts)
        return handle

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        """Up to ``size`` bytes from ``offset``, every chunk verified before it is served."""
        with self._lock:
            opened = self._files.get(fh)
        if opened is None:
            raise fail(errno.EBADF)
        node = opened.node
        end = min(offset + size, node.size)
        if offset >= end:
            return b""
        out: list[bytes] = []
        i = bisect.bisect_right(opened.starts, offset) - 1
        pos = offset
        while pos < end:
            item, start = node.content[i], opened.starts[i]
            if isinstance(item, int):
                take = min(end, start + item) - pos
                out.append(bytes(take))
            else:
                blob = self._blob(item, path)
                take = min(end, start + len(blob)) - pos
                out.append(blob[pos - start : pos - start + take])
            pos += take
            i += 1
        return b"".join(out)

    def release(self, path: str, fh: int) -> int:
        """Forget an open file's handle."""
        with self._lock:
            self._files.pop(fh, None)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        """Filesystem figures (a read-only filesystem with no free space)."""
        return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}

    # -- blobs and errors ---------------------------------------------------------------

    def _dir_links(self, tree: bytes) -> int:
        """A directory's link count: 2 and one per subdirectory (its ``..``)."""
        nodes = self._guard(self._view.children, tree)
        return 2 + sum(1 for n in nodes.values() if n.type == "dir")

    def _blob(self, blob_id: bytes, path: str) -> bytes:
        location = self._view.index.get(blob_id)
        if location is None:
            self._report(f"{path}: a chunk is missing from the repository")
            raise fail(errno.EIO)
        try:
            return self._verified.get(location)
        except StrongroomError as exc:
            self._report(f"{path}: {exc}")
            raise fail(errno.EIO) from None

    def _guard(self, call: Callable[..., T], *args: Any) -> T:
        """Run ``call``; a repository error becomes ``EIO`` (and a line on stderr)."""
        try:
            return call(*args)
        except StrongroomError as exc:
            self._report(str(exc))
            raise fail(errno.EIO) from None

    @staticmethod
    def _report(message: str) -> None:
        print(f"strongroom backup mount: {message}", file=sys.stderr, flush=True)
