"""``backup mount`` as ``restic mount`` shows it: hosts/, tags/, latest links, hard links, xattrs.

The operations are called directly first (as the FUSE loop calls them), then the same
layout is checked through a real FUSE mount of the console script where ``/dev/fuse`` works.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from strongroom.backup.archiver import Archiver
from strongroom.backup.filecache import FileCache
from strongroom.backup.maintenance import forget
from strongroom.backup.mountfs import SnapshotFS
from strongroom.backup.mountpaths import filename_of
from strongroom.backup.repository import Repository
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.snapshotfilter import SnapshotFilter
from strongroom.backup.tree import Node
from strongroom.testing.e2e_server import RunningServer, add_tenant
from strongroom.testing.http import AwsCredentials
from strongroom.testing.server import console_script

from .cli_support import Cli, env_for, kms_of
from .test_mount import UNMOUNT, find_node, names, needs_fuse, read_all, read_json_object


def backup_as(repo: Repository, src: Path, host: str, tags: Iterable[str] = ()) -> str:
    """A snapshot of ``src`` filed under ``host`` with ``tags``; its id."""
    with Archiver(repo, repo.load_index(), cache=FileCache(None, repo.keys)) as archiver:
        tree = archiver.backup_paths([str(src)])
        return archiver.finish(tree, [str(src)], hostname=host, tags=tags).id


def tree_version(repo: Repository, snapshot_id: str) -> int:
    """The format version of the tree of ``src`` in a snapshot."""
    index = repo.load_index()
    subtree = find_node(repo, index, repo.find_snapshot(snapshot_id).tree, "src").subtree
    location = index.get(subtree) if subtree is not None else None
    assert location is not None
    version: int = json.loads(repo.read_blob(location))["v"]
    return version


def test_hosts_tags_and_their_latest_links(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "f"
    made = {}
    for text, host, tags in (
        ("one", "web1", ["daily"]),
        ("two", "db/1", ["daily", "pre upgrade"]),
        ("three", "web1", []),
    ):
        src.write_text(text)
        made[text] = backup_as(repo, src, host, tags)
    now = [0.0]
    fs = SnapshotFS(repo, clock=lambda: now[0])
    assert names(fs, "/") == [".", "..", "ids", "snapshots", "hosts", "tags"]
    assert names(fs, "/hosts")[2:] == ["db_1", "web1"]  # "/" cannot be in a name
    assert names(fs, "/tags")[2:] == ["daily", "pre upgrade"]
    web1 = names(fs, "/hosts/web1")[2:]
    assert len(web1) == 3 and web1[-1] == "latest"
    assert fs.readlink("/hosts/web1/latest") == web1[1]
    assert stat.S_ISLNK(fs.getattr("/hosts/web1/latest")["st_mode"])
    assert read_all(fs, "/hosts/web1/latest/f") == b"three"
    assert read_all(fs, f"/hosts/web1/{web1[0]}/f") == b"one"
    assert read_all(fs, "/hosts/db_1/latest/f") == b"two"
    daily = names(fs, "/tags/daily")[2:]
    assert len(daily) == 3 and fs.readlink("/tags/daily/latest") == daily[1]
    assert read_all(fs, "/tags/daily/latest/f") == b"two"  # "three" has no tag
    assert read_all(fs, "/tags/pre upgrade/latest/f") == b"two"
    assert "latest" not in names(fs, "/ids") and "latest" not in names(fs, "/hosts")
    # one snapshot has one inode number wherever it is reached
    by_id = fs.getattr(f"/ids/{made['one'][:12]}")
    for path in (f"/hosts/web1/{web1[0]}", f"/tags/daily/{daily[0]}"):
        assert fs.getattr(path)["st_ino"] == by_id["st_ino"]
    entries = {name: attrs for name, attrs, _ in fs.readdir("/hosts", None)}
    assert entries["web1"]["st_ino"] == fs.getattr("/hosts/web1")["st_ino"]
    # "." is the directory, ".." its parent (the root's is itself)
    for path, up in (
        ("/", "/"),
        ("/hosts", "/"),
        ("/hosts/web1", "/hosts"),
        (f"/hosts/web1/{web1[0]}", "/hosts/web1"),
    ):
        dots = {name: attrs["st_ino"] for name, attrs, _ in fs.readdir(path, None)}
        assert (dots["."], dots[".."]) == (fs.getattr(path)["st_ino"], fs.getattr(up)["st_ino"])
    # a directory's link count: 2 and one per subdirectory
    assert fs.getattr("/")["st_nlink"] == 2 + 4
    assert fs.getattr("/hosts")["st_nlink"] == 2 + 2
    assert fs.getattr("/hosts/web1")["st_nlink"] == 2 + 2
    assert fs.getattr("/snapshots")["st_nlink"] == 2 + 3
    for missing in ("/hosts/nobody", "/tags/weekly/latest", "/hosts/web1/2001-01-01T00:00:00Z"):
        with pytest.raises(OSError) as failed:
            fs.getattr(missing)
        assert failed.value.errno == errno.ENOENT, missing
    src.write_text("four")
    backup_as(repo, src, "mail", ["daily"])
    forget(repo, [repo.find_snapshot(made["two"])])
    now[0] = 31.0  # after the refresh interval
    assert names(fs, "/hosts")[2:] == ["mail", "web1"]
    assert names(fs, "/tags")[2:] == ["daily"]
    assert read_all(fs, "/tags/daily/latest/f") == b"four"
    for gone in ("/hosts/db_1", "/tags/pre upgrade/latest"):
        with pytest.raises(OSError) as failed:
            fs.getattr(gone)
        assert failed.value.errno == errno.ENOENT, gone


def test_select_and_owner_root(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_text("x")
    backup_as(repo, src, "web1", ["daily", "db"])
    backup_as(repo, src, "web2", ["daily"])
    fs = SnapshotFS(repo, select=SnapshotFilter.of(tags=["daily,db"]).matches, owner_root=True)
    assert names(fs, "/hosts")[2:] == ["web1"] and len(names(fs, "/ids")) == 3
    attrs = fs.getattr("/hosts/web1/latest/f")
    assert attrs["st_uid"] == attrs["st_gid"] == 0
    assert fs.getattr("/tags")["st_uid"] == 0


@pytest.mark.parametrize(
    ("hosts", "tags", "paths", "expected"),
    [
        ((), (), (), [True, True, True]),
        (("a",), (), (), [True, False, True]),
        ((), ("x",), (), [True, True, False]),
        ((), ("x,y",), (), [True, False, False]),
        ((), ("y", "z"), (), [True, False, True]),  # either option
        ((), (), ("/srv",), [True, True, False]),
        ((), (), ("/srv/", "/etc"), [True, False, False]),  # every path
        (("a", "b"), ("x",), ("/srv",), [True, True, False]),
    ],
)
def test_snapshot_filter(
    hosts: tuple[str, ...], tags: tuple[str, ...], paths: tuple[str, ...], expected: list[bool]
) -> None:
    tree = bytes(32)
    snapshots = [
        Snapshot("t", "a", "u", ("/srv", "/etc"), tree, tags=("x", "y")),
        Snapshot("t", "b", "u", ("/srv",), tree, tags=("x",)),
        Snapshot("t", "a", "u", ("/home",), tree, tags=("z",)),
    ]
    chosen = SnapshotFilter.of(hosts, tags, paths)
    assert [chosen.matches(s) for s in snapshots] == expected


def test_host_and_tag_names_as_restic_makes_them() -> None:
    assert [filename_of(t) for t in ("", ".", "..", "a/b", "x")] == ["_", "_", "__", "a_b", "x"]


def hard_linked(root: Path) -> Path:
    """Three names of one file (with an extended attribute), a lone file, a sparse file and
    two subdirectories."""
    (root / "sub/deeper").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "a").write_bytes(b"linked " * 300)
    os.setxattr(root / "a", "user.origin", b"\x00camera\xff")
    os.link(root / "a", root / "b")
    os.link(root / "a", root / "sub/c")
    (root / "lonely").write_bytes(b"x" * 1000)
    with open(root / "sparse", "wb") as f:
        f.truncate(1 << 22)
        f.write(b"start")
    return root


def test_hard_links_show_their_link_count_and_one_inode(repo: Repository, tmp_path: Path) -> None:
    src = hard_linked(tmp_path / "src")
    first = backup_as(repo, src, "h")
    second = backup_as(repo, src, "h")
    node = find_node(repo, repo.load_index(), repo.find_snapshot(first).tree, "src/a")
    st = os.stat(src / "a")
    assert (node.links, node.inode, node.device) == (3, st.st_ino, st.st_dev)
    assert tree_version(repo, first) == 2
    fs = SnapshotFS(repo)
    top = f"/ids/{first[:12]}/src"
    attrs = {rel: fs.getattr(f"{top}/{rel}") for rel in ("a", "b", "sub/c", "lonely")}
    assert [attrs[rel]["st_nlink"] for rel in ("a", "b", "sub/c", "lonely")] == [3, 3, 3, 1]
    assert attrs["a"]["st_ino"] == attrs["b"]["st_ino"] == attrs["sub/c"]["st_ino"]
    assert attrs["lonely"]["st_ino"] != attrs["a"]["st_ino"]
    listed = {name: a["st_ino"] for name, a, _ in fs.readdir(top, None)}
    sub = {name: a["st_ino"] for name, a, _ in fs.readdir(f"{top}/sub", None)}
    assert listed["a"] == listed["b"] == sub["c"] == attrs["a"]["st_ino"]
    assert listed["lonely"] == attrs["lonely"]["st_ino"]
    assert read_all(fs, f"{top}/sub/c") == b"linked " * 300
    # each snapshot has its own file, so its own number
    assert fs.getattr(f"/ids/{second[:12]}/src/a")["st_ino"] != attrs["a"]["st_ino"]
    # directories: 2 links and one per subdirectory; blocks: what is stored, holes not
    assert fs.getattr(top)["st_nlink"] == 2 + 2
    assert fs.getattr(f"{top}/sub")["st_nlink"] == 2 + 1
    assert fs.getattr(f"/ids/{first[:12]}")["st_nlink"] == 2 + 1
    assert attrs["lonely"]["st_blocks"] == 2  # 1000 bytes
    assert fs.getattr(f"{top}/sparse")["st_blocks"] * 512 < 1 << 20
    # extended attributes, as recorded (a hard link's are its file's)
    assert fs.listxattr(f"{top}/sub/c") == ["user.origin"]
    assert fs.getxattr(f"{top}/b", "user.origin") == b"\x00camera\xff"
    assert fs.listxattr(f"{top}/lonely") == [] and fs.listxattr("/hosts") == []
    for where, name in ((f"{top}/lonely", "user.origin"), (top, "user.x"), ("/ids", "user.x")):
        with pytest.raises(OSError) as failed:
            fs.getxattr(where, name)
        assert failed.value.errno == errno.ENODATA


def test_snapshots_from_before_link_counts_show_one_link(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trees written before v2 record no link count: one link, one inode for all names."""
    src = hard_linked(tmp_path / "src")
    made_by = Archiver._node

    def without_links(self: Archiver, name: str, st: os.stat_result, kind: str) -> Node:
        node = made_by(self, name, st, kind)
        node.links = node.inode = node.device = 0
        return node

    monkeypatch.setattr(Archiver, "_node", without_links)  # as a writer before v2
    monkeypatch.setattr("strongroom.backup.archiver.read_xattrs", lambda path: ({}, None))
    old = backup_as(repo, src, "h")
    assert tree_version(repo, old) == 1
    fs = SnapshotFS(repo)
    top = f"/ids/{old[:12]}/src"
    a, b = fs.getattr(f"{top}/a"), fs.getattr(f"{top}/b")
    assert a["st_nlink"] == b["st_nlink"] == 1 and a["st_ino"] == b["st_ino"]
    assert read_all(fs, f"{top}/b") == b"linked " * 300


# -- through a real mount ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant(server: RunningServer) -> AwsCredentials:
    return add_tenant(server.data_dir, "backup-mount-layout")


@contextlib.contextmanager
def mounted(cli: Cli, repo: str, mnt: Path, *options: str) -> Iterator[int]:
    """``backup mount`` running on ``mnt``, yielding how many snapshots it announced.

    Unmounted afterwards, and checked to have ended cleanly.
    """
    proc = subprocess.Popen(
        [console_script(), "backup", "mount", "--repo", repo, str(mnt), "--json", *options],
        env=cli.env,
        cwd=mnt.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        yield json.loads(read_json_object(proc, 60))["snapshots"]
    finally:
        subprocess.run([UNMOUNT or "fusermount3", "-u", str(mnt)], check=False)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()


def mount_options(mnt: Path) -> set[str]:
    """The options the kernel lists for the mount at ``mnt``."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(mnt):
            return set(",".join((fields[5], fields[-1])).split(","))
    raise AssertionError(f"{mnt} is not mounted")


@needs_fuse
def test_mounted_hosts_tags_and_hard_links(
    server: RunningServer, tenant: AwsCredentials, tmp_path: Path
) -> None:
    cli = Cli(env_for(server, tenant, tmp_path / "aws"), tmp_path)
    key = str(kms_of(server, tenant).create_key()["KeyMetadata"]["Arn"])
    repo = str(tmp_path / "repo")
    src = hard_linked(tmp_path / "src")
    as_root = os.geteuid() == 0
    if as_root:
        os.chown(src / "lonely", 1234, 1234)
    cli("backup", "init", "--repo", repo, "--key", key)
    made = cli.json("backup", "create", "--repo", repo, "--host", "web1", "--tag", "daily", "src")
    assert made["hostname"] == "web1"
    cli("backup", "create", "--repo", repo, "-H", "db1", "src")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with mounted(cli, repo, mnt) as count:
        assert count == 2 and "default_permissions" in mount_options(mnt)
        assert sorted(os.listdir(mnt)) == ["hosts", "ids", "snapshots", "tags"]
        assert sorted(os.listdir(mnt / "hosts")) == ["db1", "web1"]
        assert os.listdir(mnt / "tags") == ["daily"]
        for latest in (mnt / "hosts/web1/latest", mnt / "tags/daily/latest"):
            assert latest.is_symlink()
            assert (latest / "src/sub/c").read_bytes() == b"linked " * 300
        root = mnt / "tags/daily/latest/src"
        a, b, c = (os.stat(root / rel) for rel in ("a", "b", "sub/c"))
        assert a.st_nlink == b.st_nlink == c.st_nlink == 3
        assert a.st_ino == b.st_ino == c.st_ino != os.stat(root / "lonely").st_ino
        assert os.stat(root / "lonely").st_nlink == 1
        assert os.stat(root / "lonely").st_uid == (1234 if as_root else os.getuid())
        assert os.stat(root).st_nlink == 4 and os.stat(root / "sparse").st_blocks < 2048
        listed = {e.name: e.inode() for e in os.scandir(root)}
        assert listed["a"] == listed["b"] == a.st_ino
        assert os.listxattr(root / "b") == ["user.origin"]
        assert os.getxattr(root / "sub/c", "user.origin") == b"\x00camera\xff"
        with pytest.raises(OSError) as no_attr:
            os.getxattr(root / "lonely", "user.origin")
        assert no_attr.value.errno == errno.ENODATA
        # the tools a user points at it walk it all without a complaint
        found = subprocess.run(["find", str(mnt)], capture_output=True, check=False)
        assert found.returncode == 0 and found.stderr == b"", found.stderr
        lines = found.stdout.decode().splitlines()
        assert f"{mnt}/hosts/db1/latest" in lines and f"{mnt}/tags/daily/latest" in lines
        walked = subprocess.run(["ls", "-laRL", str(mnt)], capture_output=True, check=False)
        assert walked.returncode == 0 and walked.stderr == b"", walked.stderr
    options = ("--host", "web1", "--tag", "daily", "--owner-root", "--no-default-permissions")
    with mounted(cli, repo, mnt, *options) as count:
        assert count == 1 and "default_permissions" not in mount_options(mnt)
        assert os.listdir(mnt / "hosts") == ["web1"]
        assert os.stat(mnt / "hosts/web1/latest/src/lonely").st_uid == 0
    with mounted(cli, repo, mnt, "--tag", "daily,weekly", "--path", str(src)) as count:
        assert count == 0 and os.listdir(mnt / "hosts") == []
    with mounted(cli, repo, mnt, "--path", str(src), "--host", "db1") as count:
        assert count == 1 and os.listdir(mnt / "hosts") == ["db1"]


def test_mount_options_are_checked_first(
    server: RunningServer, tenant: AwsCredentials, tmp_path: Path
) -> None:
    cli = Cli(env_for(server, tenant, tmp_path / "aws"), tmp_path)
    (tmp_path / "mnt").mkdir()
    for options, says in (
        (["--path", "relative/dir"], "--path 'relative/dir' must be absolute"),
        (["--tag", ","], "--tag needs at least one tag name"),
    ):
        proc = cli("backup", "mount", "--repo", "none", "mnt", *options, expect=1)
        line = proc.stderr.decode()
        assert says in line and line.count("\n") == 1, line
