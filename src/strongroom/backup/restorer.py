"""``backup restore``: verified blobs into files, pack by pack, from a thread pool.

Every blob is decrypted, decompressed and checked against its keyed id before a byte of
it is written, and files are written under temporary names (``.NAME.sr-restore``) that
are renamed only when complete: a failure leaves no partial file under a real name.
Each needed pack is read once (the span of the blobs needed from it).
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from strongroom.backup.errors import CorruptError
from strongroom.backup.index import Index
from strongroom.backup.pack import PackEntry, PackPrefix, pack_digest, read_header
from strongroom.backup.repository import Repository, pack_name
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.tree import DEVICES, Node
from strongroom.backup.xattrs import unsupported, write_xattrs
from strongroom.errors import NotFoundError, ValidationError

TEMP_SUFFIX = ".sr-restore"


@dataclass(slots=True)
class PlannedFile:
    """A file to write: where, its node, and how many blob writes it still waits for."""

    path: Path
    node: Node
    fd: int = -1
    remaining: int = 0


@dataclass(slots=True)
class RestoreStats:
    """What a restore wrote."""

    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)


def _temp_of(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


class Restorer:
    """Restores (part of) one snapshot into an empty or new target directory."""

    def __init__(
        self,
        repo: Repository,
        index: Index,
        *,
        threads: int = 2,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.repo = repo
        self.index = index
        self.threads = max(1, threads)
        self.stats = RestoreStats()
        self._progress = progress or (lambda n: None)
        self._lock = threading.Lock()
        self._files: list[PlannedFile] = []
        self._dirs: list[tuple[Path, Node]] = []
        self._links: list[tuple[Path, str]] = []
        self._blobs: dict[bytes, list[tuple[PlannedFile, int]]] = {}
        self._snapshot: Snapshot | None = None
        self._base = ""
        self._no_xattrs = False  # the target said it holds no extended attributes

    # -- plan -----------------------------------------------------------------------------

    def select(self, snapshot: Snapshot | None, path: str | None) -> list[Node]:
        """The nodes to restore: the root's, or the one node at ``path``."""
        assert snapshot is not None
        nodes = self.repo.load_tree(self.index, snapshot.tree)
        if not path:
            return nodes
        parts = [p for p in path.strip("/").split("/") if p]
        for i, part in enumerate(parts):
            found = next((n for n in nodes if n.name == part), None)
            if found is None:
                raise NotFoundError(f"No {path!r} in snapshot {snapshot.id[:12]}.")
            if i == len(parts) - 1:
                return [found]
            if found.type != "dir" or found.subtree is None:
                raise NotFoundError(f"No {path!r} in snapshot {snapshot.id[:12]}.")
            nodes = self.repo.load_tree(self.index, found.subtree)
        return nodes

    def plan(self, nodes: list[Node], directory: Path) -> None:
        """Make directories and record files, links and blobs under ``directory``."""
        for node in nodes:
            target = directory / node.name
            if node.type == "dir":
                target.mkdir(mode=0o700)
                self._dirs.append((target, node))
                assert node.subtree is not None
                self.plan(self.repo.load_tree(self.index, node.subtree), target)
            elif node.type == "file":
                planned = PlannedFile(target, node)
                self._files.append(planned)
                offset = 0
                for item in node.content:
                    if isinstance(item, int):
                        offset += item
                        continue
                    location = self.index.get(item)
                    if location is None:
                        raise CorruptError(f"A chunk of {target} is missing from the repository.")
                    self._blobs.setdefault(item, []).append((planned, offset))
                    planned.remaining += 1
                    offset += location.entry.plain_length
                if offset != node.size:
                    raise CorruptError(f"The content of {target} does not add up to its size.")
            elif node.type == "symlink":
                assert node.target is not None
                os.symlink(node.target, target)
                self._apply_meta(target, node, symlink=True)
                self.stats.links += 1
            elif node.type == "hardlink":
                assert node.link is not None
                if self._base and not node.link.startswith(self._base + "/"):
                    # the first name is outside the selection: restore the content here
                    (first,) = self.select(self._snapshot, node.link)
                    if first.type == "file":
                        self.plan([replace(first, name=node.name)], directory)
                    continue
                self._links.append((target, node.link))
            elif node.type == "fifo":
                os.mkfifo(target, 0o600)
                self._apply_meta(target, node)
            elif node.type in DEVICES:
                self._device(target, node)
            # a socket is not restored (as restic): it is only a name without its server

    # -- write ----------------------------------------------------------------------------

    def restore(self, snapshot: Snapshot, target: Path, path: str | None = None) -> RestoreStats:
        """Restore ``snapshot`` (or its ``path``) into ``target`` (absent or empty)."""
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ValidationError(
                f"{target}: the restore target must be new or an empty directory."
            )
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        self._snapshot = snapshot
        self._base = "/".join(p for p in (path or "").strip("/").split("/")[:-1] if p)
        try:
            self.plan(self.select(snapshot, path), root)
            for planned in self._files:
                temp = _temp_of(planned.path)
                planned.fd = os.open(
                    temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
                )
                os.ftruncate(planned.fd, planned.node.size)
                if planned.remaining == 0:
                    self._complete(planned)
            self._write_blobs()
            self._make_links(root)
            for directory, node in reversed(self._dirs):
                self._apply_meta(directory, node)
                self.stats.dirs += 1
        finally:
            for planned in self._files:
                if planned.fd >= 0:
                    os.close(planned.fd)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(_temp_of(planned.path))
        return self.stats

    def _write_blobs(self) -> None:
        by_pack: dict[str, list[PackEntry]] = {}
        for blob_id in self._blobs:
            location = self.index.get(blob_id)
            assert location is not None
            by_pack.setdefault(location.pack, []).append(location.entry)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="restore") as pool:
            futures = [pool.submit(self._restore_pack, p, e) for p, e in sorted(by_pack.items())]
            for future in futures:
                future.result()

    def _restore_pack(self, pack: str, entries: list[PackEntry]) -> None:
        entries.sort(key=lambda e: e.offset)
        data = self.repo.store.get(pack_name(pack))  # whole: its header and name are checked
        prefix = PackPrefix.parse(data)
        header = read_header(self.repo.session_key(prefix.sid), data)
        if (
            pack_digest(data, header) != pack
            or any(header[e.index] != e for e in entries if e.index < len(header))
            or any(e.index >= len(header) for e in entries)
        ):
            raise CorruptError(f"Pack {pack[:12]} is corrupt.")
        view = memoryview(data)
        open_one = self.repo.blob_opener(prefix)
        for entry in entries:
            sealed = view[entry.offset : entry.offset + entry.length]
            plain = open_one(entry, sealed)
            for planned, offset in self._blobs[entry.blob_id]:
                os.pwrite(planned.fd, plain, offset)
                self._progress(len(plain))
                with self._lock:
                    planned.remaining -= 1
                    done = planned.remaining == 0
                if done:
                    self._complete(planned)

    def _complete(self, planned: PlannedFile) -> None:
        os.close(planned.fd)
        planned.fd = -1
        temp = _temp_of(planned.path)
        self._apply_meta(temp, planned.node)
        os.rename(temp, planned.path)
        with self._lock:
            self.stats.files += 1
            self.stats.bytes += planned.node.size

    def _make_links(self, root: Path) -> None:
        base = self._base
        for target, link in self._links:
            rel = link[len(base) + 1 :] if base and link.startswith(base + "/") else link
            source = (root / rel).resolve()
            if root not in source.parents or not source.is_file():
                self.stats.errors.append(f"{target}: hard link target {link!r} was not restored")
                continue
            os.link(source, target)
            self.stats.links += 1

    def _apply_meta(self, path: Path, node: Node, *, symlink: bool = False) -> None:
        if os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.chown(path, node.uid, node.gid, follow_symlinks=not symlink)
        if node.xattrs:  # after chown (it clears security.capability), before chmod
            self._xattrs(path, node, symlink)
        if not symlink:
            os.chmod(path, node.mode)
        with contextlib.suppress(NotImplementedError, OSError):
            os.utime(path, ns=(node.mtime_ns, node.mtime_ns), follow_symlinks=not symlink)

    def _xattrs(self, path: Path, node: Node, symlink: bool) -> None:
        shown = path.with_name(node.name)  # a file is still its temporary name here
        for name, code in write_xattrs(str(path), node.xattrs, symlink=symlink):
            with self._lock:
                if not unsupported(code):
                    self.stats.errors.append(
                        f"{shown}: extended attribute {name} not restored: {os.strerror(code)}"
                    )
                elif not self._no_xattrs:
                    self._no_xattrs = True
                    self.stats.errors.append(
                        f"{shown}: the file system does not hold extended attributes; "
                        "none are restored"
                    )

    def _device(self, target: Path, node: Node) -> None:
        kind = stat.S_IFCHR if node.type == "chardev" else stat.S_IFBLK
        try:
            os.mknod(target, kind | 0o600, node.rdev)
        except OSError as exc:  # creating device nodes needs CAP_MKNOD (root)
            self.stats.errors.append(f"{target}: device node not restored: {exc.strerror}")
            return
        self._apply_meta(target, node)
