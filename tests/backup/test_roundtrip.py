"""Create, restore and check in process: every node type round-trips, bytes and metadata."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from strongroom.backup.archiver import Archiver
from strongroom.backup.checker import Checker
from strongroom.backup.diff import diff_trees
from strongroom.backup.filecache import FileCache
from strongroom.backup.mountfs import SnapshotFS
from strongroom.backup.repository import Repository
from strongroom.backup.restorer import Restorer

from .conftest import make_tree


def backup(repo: Repository, src: Path, cache_dir: Path | None = None) -> str:
    index = repo.load_index()
    cache = FileCache(None if cache_dir is None else cache_dir / "c", repo.keys)
    with Archiver(repo, index, cache=cache, threads=2) as archiver:
        tree = archiver.backup_paths([str(src)])
        return archiver.finish(tree, [str(src)]).id


def test_round_trip_every_node_type(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    snapshot_id = backup(repo, src)
    out = tmp_path / "out"
    snapshot = repo.find_snapshot(snapshot_id[:8])
    Restorer(repo, repo.load_index()).restore(snapshot, out)
    for rel, data in files.items():
        assert (out / "src" / rel).read_bytes() == data, rel
    assert os.readlink(out / "src/link") == "a.bin"
    assert os.stat(out / "src/hard").st_ino == os.stat(out / "src/sub/deeper/small").st_ino
    assert (os.stat(out / "src/sub/deeper/small").st_mode & 0o777) == 0o640
    assert os.stat(out / "src/sparse").st_blocks * 512 < 1 << 20
    assert os.stat(out / "src/a.bin").st_mtime_ns == os.stat(src / "a.bin").st_mtime_ns
    report = Checker(repo).run(read_data=True)
    assert report.ok, report.errors
    assert not report.warnings


def test_second_backup_dedups_and_uses_the_cache(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    backup(repo, src, tmp_path)
    second = repo.load_snapshot(backup(repo, src, tmp_path))
    assert second.summary["files_unmodified"] == 5
    assert second.summary["bytes_read"] == 0
    assert second.summary["blobs_added"] == 0
    assert repo.find_snapshot("latest").id == second.id


def test_restore_one_path(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    snapshot = repo.load_snapshot(backup(repo, src))
    out = tmp_path / "out"
    Restorer(repo, repo.load_index()).restore(snapshot, out, "src/sub/deeper")
    assert (out / "deeper/small").read_bytes() == b"hello"
    assert sorted(p.name for p in out.iterdir()) == ["deeper"]


def test_extended_attributes_round_trip(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "dir/f").write_bytes(b"content")
    (src / "plain").write_bytes(b"no attributes")
    binary = bytes(range(256))
    os.setxattr(src / "dir/f", "user.checksum", binary)
    os.setxattr(src / "dir/f", "user.empty", b"")
    os.setxattr(src / "dir", "user.project", b"atlas")
    os.chmod(src / "dir/f", 0o400)  # restored after its attributes: still set
    privileged = os.geteuid() == 0
    if privileged:
        os.setxattr(src / "dir/f", "trusted.origin", b"root only")
    snapshot = repo.load_snapshot(backup(repo, src))
    index = repo.load_index()
    nodes = dict(repo.walk(index, snapshot.tree))
    assert nodes["src/dir/f"].xattrs["user.checksum"] == binary
    assert nodes["src/plain"].xattrs == {}
    out = tmp_path / "out"
    stats = Restorer(repo, index).restore(snapshot, out)
    assert stats.errors == []
    assert os.getxattr(out / "src/dir/f", "user.checksum") == binary
    assert os.getxattr(out / "src/dir/f", "user.empty") == b""
    assert os.getxattr(out / "src/dir", "user.project") == b"atlas"
    assert os.listxattr(out / "src/plain") == []
    assert (os.stat(out / "src/dir/f").st_mode & 0o777) == 0o400
    if privileged:
        assert os.getxattr(out / "src/dir/f", "trusted.origin") == b"root only"
    os.setxattr(src / "dir", "user.project", b"borealis")  # only an attribute changes
    later = repo.load_snapshot(backup(repo, src))
    changes = diff_trees(repo, repo.load_index(), snapshot.tree, later.tree)
    assert (changes.modified, changes.added, changes.removed) == (["src/dir"], [], [])


@pytest.mark.skipif(os.geteuid() != 0, reason="making device nodes needs root")
def test_devices_and_sockets(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(src / "loop", stat.S_IFBLK | 0o660, os.makedev(7, 0))
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(src / "sock"))
    snapshot = repo.load_snapshot(backup(repo, src))
    index = repo.load_index()
    nodes = {path: node for path, node in repo.walk(index, snapshot.tree)}
    assert (nodes["src/null"].type, nodes["src/null"].rdev) == ("chardev", os.makedev(1, 3))
    assert (nodes["src/loop"].type, nodes["src/loop"].rdev) == ("blockdev", os.makedev(7, 0))
    assert nodes["src/sock"].type == "socket"
    out = tmp_path / "out"
    stats = Restorer(repo, index).restore(snapshot, out)
    assert stats.errors == []
    null = os.stat(out / "src/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert null.st_mode == os.stat(src / "null").st_mode
    assert stat.S_ISBLK(os.stat(out / "src/loop").st_mode)
    assert sorted(os.listdir(out / "src")) == ["loop", "null"]  # a socket is not restored
    fs = SnapshotFS(repo)
    attrs = fs.getattr("/snapshots/latest/src/null")
    assert stat.S_ISCHR(attrs["st_mode"]) and attrs["st_rdev"] == os.makedev(1, 3)
    assert stat.S_ISSOCK(fs.getattr("/snapshots/latest/src/sock")["st_mode"])
    modes = {name: a["st_mode"] for name, a, _ in fs.readdir("/snapshots/latest/src", None)}
    assert (modes["null"], modes["loop"], modes["sock"]) == (
        stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK,
    )  # fmt: skip
