"""``backup create``: walk paths (or read stdin), chunk, deduplicate, seal, write a snapshot.

The main thread walks the paths, makes the tree of each directory and reads each file into
the chunk pipeline (:class:`~strongroom.backup.pipeline.ChunkPipeline`: a thread pool
hashes, compresses and packs the chunks, in bounded memory); the file cache skips
unchanged files. Order of writes: the session's key file, packs, index files, then the
snapshot: a crash before the snapshot leaves only unreferenced packs, which ``prune``
removes.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import getpass
import grp
import os
import pwd
import socket
import stat
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from strongroom.backup.chunker import Chunker
from strongroom.backup.filecache import FileCache
from strongroom.backup.index import Index
from strongroom.backup.pack import TYPE_TREE
from strongroom.backup.packer import Packer
from strongroom.backup.pipeline import ChunkPipeline, Progress
from strongroom.backup.repository import Repository, now_rfc3339, pack_name
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.tree import Content, Node, encode_tree
from strongroom.backup.xattrs import read_xattrs
from strongroom.errors import ValidationError


@dataclass(slots=True)
class Summary:
    """Counts of one run (they go into the snapshot)."""

    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    dirs: int = 0
    bytes_read: int = 0
    total_bytes: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _owner(uid: int, gid: int, names: dict[tuple[str, int], str]) -> tuple[str, str]:
    def look(kind: str, ident: int) -> str:
        if (kind, ident) not in names:
            try:
                name = pwd.getpwuid(ident).pw_name if kind == "u" else grp.getgrgid(ident).gr_name
            except KeyError:
                name = ""
            names[(kind, ident)] = name
        return names[(kind, ident)]

    return look("u", uid), look("g", gid)


class Archiver:
    """One ``create`` run (use as a context manager: the pool is shut down on exit)."""

    def __init__(
        self,
        repo: Repository,
        index: Index,
        *,
        cache: FileCache,
        threads: int = 2,
        excludes: Iterable[str] = (),
        progress: Progress | None = None,
    ) -> None:
        self.repo = repo
        self.index = index
        self.session = repo.new_session()
        self.packer = Packer(repo, index, self.session)
        self.chunks = ChunkPipeline(
            repo.keys,
            self.packer,
            Chunker(repo.config, repo.keys.chunker_seed),
            threads=threads,
            progress=progress,
        )
        self.cache = cache
        self.excludes = tuple(excludes)
        self.summary = Summary()
        self.referenced: set[bytes] = set()
        self._progress = progress or (lambda n: None)
        self._names: dict[tuple[str, int], str] = {}
        self._links: dict[tuple[int, int], str] = {}

    def __enter__(self) -> Archiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.chunks.close()

    # -- files and trees ----------------------------------------------------------------

    def _excluded(self, name: str, path: str) -> bool:
        return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in self.excludes)

    def _node(self, name: str, st: os.stat_result, kind: str) -> Node:
        user, group = _owner(st.st_uid, st.st_gid, self._names)
        node = Node(
            name, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, user, group,
            st.st_mtime_ns, st.st_size if kind == "file" else 0,
        )  # fmt: skip
        if kind in ("file", "hardlink") and st.st_nlink > 1:  # what mount shows for each name
            node.links, node.inode, node.device = st.st_nlink, st.st_ino, st.st_dev
        return node

    def _file(
        self, path: str, rel: str, node: Node, st: os.stat_result
    ) -> list[Future[bytes | int]] | None:
        """Queue a file's chunks; ``None`` when the cache gave its content."""
        self.summary.total_bytes += st.st_size
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        cached = self.cache.lookup(path, stamp)
        if cached is not None and all(isinstance(c, int) or c in self.index for c in cached):
            node.content = cached
            self.summary.files_unmodified += 1
            self._progress(st.st_size)
            return None
        with open(path, "rb", buffering=0) as src:
            if st.st_blocks * 512 < st.st_size:
                futures = self.chunks.read_sparse(src, st.st_size)
            else:
                futures = self.chunks.read_stream(src, st.st_size)
        if self.cache.knows(path):
            self.summary.files_changed += 1
        else:
            self.summary.files_new += 1
        return futures

    def backup_dir(self, path: str, rel: str) -> bytes:
        """Back up a directory's entries; the id of its tree."""
        self.summary.dirs += 1
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            self.summary.errors.append(f"{path}: {exc.strerror}")
            entries = []
        nodes: list[Node] = []
        waiting: list[tuple[Node, str, os.stat_result, list[Future[bytes | int]]]] = []
        for entry in entries:
            child_rel = f"{rel}/{entry.name}"
            if self._excluded(entry.name, entry.path):
                continue
            try:
                node = self.backup_entry(entry.path, entry.name, child_rel, waiting)
            except OSError as exc:
                self.summary.errors.append(f"{entry.path}: {exc.strerror}")
                continue
            if node is not None:
                nodes.append(node)
        self._settle(waiting)
        return self.save_tree(nodes)

    def backup_entry(
        self,
        path: str,
        name: str,
        rel: str,
        waiting: list[tuple[Node, str, os.stat_result, list[Future[bytes | int]]]],
    ) -> Node | None:
        """The node of one path (a directory is backed up whole); ``None`` if skipped."""
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            node = self._node(name, st, "dir")
            node.subtree = self.backup_dir(path, rel)
        elif stat.S_ISREG(st.st_mode):
            first = self._links.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
            if first is not None:
                node = self._node(name, st, "hardlink")
                node.link = first
                return node
            if st.st_nlink > 1:
                self._links[(st.st_dev, st.st_ino)] = rel
            node = self._node(name, st, "file")
            futures = self._file(path, rel, node, st)
            if futures is not None:
                waiting.append((node, path, st, futures))
            else:
                self.referenced.update(c for c in node.content if isinstance(c, bytes))
        elif stat.S_ISLNK(st.st_mode):
            node = self._node(name, st, "symlink")
            node.target = os.readlink(path)
        elif stat.S_ISFIFO(st.st_mode):
            node = self._node(name, st, "fifo")
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            node = self._node(name, st, "chardev" if stat.S_ISCHR(st.st_mode) else "blockdev")
            node.rdev = st.st_rdev
        elif stat.S_ISSOCK(st.st_mode):
            node = self._node(name, st, "socket")
        else:
            self.summary.skipped += 1
            return None
        node.xattrs, problem = read_xattrs(path)
        if problem is not None:
            self.summary.errors.append(problem)
        return node

    def _settle(
        self, waiting: list[tuple[Node, str, os.stat_result, list[Future[bytes | int]]]]
    ) -> None:
        for node, path, st, futures in waiting:
            content: Content = [f.result() for f in futures]
            node.content = content
            self.referenced.update(c for c in content if isinstance(c, bytes))
            self.cache.record(
                path, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino), content
            )

    def save_tree(self, nodes: list[Node]) -> bytes:
        """Store a tree blob; its id."""
        data = encode_tree(nodes)
        tree_id = self.repo.keys.tree_id(data)
        self.packer.save(TYPE_TREE, tree_id, data)
        self.referenced.add(tree_id)
        return tree_id

    # -- runs ---------------------------------------------------------------------------

    def backup_paths(self, paths: Iterable[str]) -> bytes:
        """Back up ``paths``; the root tree's id (one node per path, by its last name)."""
        nodes: list[Node] = []
        waiting: list[tuple[Node, str, os.stat_result, list[Future[bytes | int]]]] = []
        for raw in paths:
            path = os.path.abspath(raw)
            name = os.path.basename(path) or "root"
            if any(n.name == name for n in nodes):
                raise ValidationError(f"Two paths end in the same name {name!r}.")
            node = self.backup_entry(path, name, name, waiting)
            if node is not None:
                nodes.append(node)
        self._settle(waiting)
        return self.save_tree(nodes)

    def backup_stdin(self, src: BinaryIO, name: str) -> bytes:
        """Back up a stream as one file ``name``; the root tree's id."""
        if not name or "/" in name or name in (".", ".."):
            raise ValidationError("--stdin-name must be a plain file name.")
        futures = self.chunks.read_stream(src)
        content: Content = [f.result() for f in futures]
        self.referenced.update(c for c in content if isinstance(c, bytes))
        size = self.summary.bytes_read = self.chunks.bytes_read
        self.summary.total_bytes = size
        self.summary.files_new = 1
        mtime = int(datetime.now().timestamp() * 1e9)
        node = Node(name, "file", 0o600, os.getuid(), os.getgid(), getpass.getuser(), "",
                    mtime, size, content)  # fmt: skip
        return self.save_tree([node])

    def finish(
        self, tree: bytes, paths: Iterable[str], *, name: str | None = None,
        tags: Iterable[str] = (), retain_until: datetime | None = None,
        hostname: str | None = None,
    ) -> Snapshot:  # fmt: skip
        """Flush packs and index, apply retention, write the snapshot and the cache.

        ``hostname`` (default: this machine's) is the host the snapshot is filed under.
        """
        self.packer.flush()
        self.summary.bytes_read = self.chunks.bytes_read
        until = None
        if retain_until is not None:
            until = retain_until.strftime("%Y-%m-%dT%H:%M:%SZ")
            self.retain(retain_until)
        s = self.summary
        snapshot = Snapshot(
            time=now_rfc3339(), hostname=hostname or socket.gethostname(),
            username=getpass.getuser(),
            paths=tuple(paths), tree=tree, name=name, tags=tuple(tags), retain_until=until,
            known=tuple(self.repo.snapshot_ids()),
            summary={
                "files_new": s.files_new, "files_changed": s.files_changed,
                "files_unmodified": s.files_unmodified, "dirs": s.dirs,
                "bytes_read": s.bytes_read, "total_bytes": s.total_bytes,
                "blobs_added": self.packer.stats.blobs_added,
                "bytes_added": self.packer.stats.bytes_added,
                "stored_bytes": self.packer.stats.stored_bytes,
                "packs_added": self.packer.stats.packs,
            },
        )  # fmt: skip
        snapshot_id = self.repo.save_snapshot(self.session, snapshot)
        self.cache.save()
        return dataclasses.replace(snapshot, id=snapshot_id)

    def retain(self, until: datetime) -> None:
        """Give every pack this snapshot references, and the files to read them, ``until``."""
        store = self.repo.store
        packs = {loc.pack for b in self.referenced if (loc := self.index.get(b)) is not None}
        for pack in sorted(packs):
            store.extend_retention(pack_name(pack), until)
        for name in [*store.list("index/"), *store.list("keys/")]:
            store.extend_retention(name, until)
