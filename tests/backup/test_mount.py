"""``backup mount``: the filesystem operations called directly, then a real FUSE mount.

The first tests call :class:`SnapshotFS` as the FUSE loop does (the same object, the same
methods), so they run everywhere; the last ones mount through the console script and
run only where ``/dev/fuse`` is usable (they are skipped elsewhere, saying why).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import select
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.backup.fuse import fuse_problem
from strongroom.backup.index import Index
from strongroom.backup.mountfs import SnapshotFS
from strongroom.backup.mountpaths import snapshot_names
from strongroom.backup.repository import Repository, pack_name
from strongroom.backup.store import LocalStore
from strongroom.backup.tree import Node
from strongroom.testing.e2e_server import RunningServer, add_tenant
from strongroom.testing.http import AwsCredentials
from strongroom.testing.server import console_script

from .cli_support import Cli, env_for, kms_of
from .conftest import MIB, make_tree
from .test_roundtrip import backup

BIG = 7 * MIB + 123


def names(fs: SnapshotFS, path: str) -> list[str]:
    return [name for name, _, _ in fs.readdir(path, None)]


def read_all(fs: SnapshotFS, path: str, offset: int = 0, size: int = 1 << 40) -> bytes:
    handle = fs.open(path, os.O_RDONLY)
    try:
        return fs.read(path, size, offset, handle)
    finally:
        fs.release(path, handle)


def find_node(repo: Repository, index: Index, tree: bytes, rel: str) -> Node:
    return next(node for path, node in repo.walk(index, tree) if path == rel)


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    src = tmp_path / "src"
    files = make_tree(src)
    files["big.bin"] = random.Random(5).randbytes(BIG)
    (src / "big.bin").write_bytes(files["big.bin"])
    os.mkfifo(src / "fifo")
    return src, files


def test_layout_ids_times_and_latest(
    repo: Repository, source: tuple[Path, dict[str, bytes]]
) -> None:
    src, _ = source
    first, second = backup(repo, src), backup(repo, src)
    fs = SnapshotFS(repo)
    assert names(fs, "/") == [".", "..", "ids", "snapshots", "hosts", "tags"]
    assert names(fs, "/ids")[2:] == [first[:12], second[:12]]
    times = names(fs, "/snapshots")[2:]
    assert len(times) == 3 and times[-1] == "latest"
    assert fs.readlink("/snapshots/latest") == times[1]  # the newer one
    assert stat.S_ISLNK(fs.getattr("/snapshots/latest")["st_mode"])
    for top in (f"/ids/{second[:12]}", f"/snapshots/{times[1]}"):  # the kernel follows latest
        assert names(fs, top) == [".", "..", "src"]
    for top in (f"/ids/{second[:12]}", f"/snapshots/{times[1]}", "/snapshots/latest"):
        assert stat.S_ISDIR(fs.getattr(f"{top}/src")["st_mode"])
    # every entry carries an inode number (readdir(3) hides entries whose number is 0)
    for _, attrs, _ in fs.readdir(f"/ids/{first[:12]}/src", None):
        assert attrs["st_ino"] > 1
    with pytest.raises(OSError) as missing:
        fs.getattr("/ids/000000000000")
    assert missing.value.errno == errno.ENOENT


def test_same_second_snapshots_get_distinct_names(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    for _ in range(2):
        backup(repo, tmp_path / "f")
    first, second = repo.snapshots()
    same = [first, dataclasses.replace(second, time=first.time)]  # made in one second
    named = snapshot_names(same)
    assert list(named.values()) == same
    one, two = named
    assert two == f"{one}-1"


def test_files_read_at_any_offset_across_chunk_boundaries(
    repo: Repository, source: tuple[Path, dict[str, bytes]]
) -> None:
    src, files = source
    backup(repo, src)
    fs = SnapshotFS(repo)
    index = repo.load_index()
    tree = repo.find_snapshot("latest").tree
    node = find_node(repo, index, tree, "src/big.bin")
    blobs = [c for c in node.content if isinstance(c, bytes)]
    assert len(blobs) >= 3  # several chunks, so reads cross boundaries
    boundaries = []
    offset = 0
    for blob in blobs[:-1]:
        location = index.get(blob)
        assert location is not None
        offset += location.entry.plain_length
        boundaries.append(offset)
    data = files["big.bin"]
    path = "/snapshots/latest/src/big.bin"
    attrs = fs.getattr(path)
    assert stat.S_ISREG(attrs["st_mode"]) and attrs["st_size"] == BIG
    assert attrs["st_mtime"] == os.stat(src / "big.bin").st_mtime_ns
    handle = fs.open(path, os.O_RDONLY)
    for edge in boundaries:
        for start, size in ((edge - 5, 10), (edge - 1, 1), (edge, 4096), (edge - 70000, 140000)):
            assert fs.read(path, size, start, handle) == data[start : start + size]
    rng = random.Random(11)
    for _ in range(50):
        start, size = rng.randrange(BIG), rng.choice((1, 4096, 131072, 3 * MIB))
        assert fs.read(path, size, start, handle) == data[start : start + size]
    assert fs.read(path, 4096, BIG, handle) == b""  # at the end
    assert fs.read(path, 4096, BIG - 3, handle) == data[-3:]
    assert fs.read(path, BIG, 0, handle) == data
    fs.release(path, handle)
    for rel in ("a.bin", "empty", "sub/log.txt", "sub/deeper/small"):
        assert read_all(fs, f"/snapshots/latest/src/{rel}") == files[rel], rel


def test_sparse_symlink_hardlink_fifo_and_modes(
    repo: Repository, source: tuple[Path, dict[str, bytes]]
) -> None:
    src, files = source
    backup(repo, src)
    fs = SnapshotFS(repo)
    top = "/snapshots/latest/src"
    sparse = files["sparse"]
    assert fs.getattr(f"{top}/sparse")["st_size"] == len(sparse)
    assert read_all(fs, f"{top}/sparse") == sparse
    hole_to_data = 5 * MIB - 100
    assert read_all(fs, f"{top}/sparse", hole_to_data, 200) == sparse[hole_to_data:][:200]
    link = fs.getattr(f"{top}/link")
    assert stat.S_ISLNK(link["st_mode"]) and link["st_size"] == len("a.bin")
    assert fs.readlink(f"{top}/link") == "a.bin"
    hard, first = fs.getattr(f"{top}/hard"), fs.getattr(f"{top}/sub/deeper/small")
    assert hard["st_ino"] == first["st_ino"] and stat.S_ISREG(hard["st_mode"])
    assert read_all(fs, f"{top}/hard") == b"hello"
    entries = {name: attrs for name, attrs, _ in fs.readdir(top, None)}
    assert entries["hard"]["st_ino"] == first["st_ino"]
    assert stat.S_IMODE(first["st_mode"]) == 0o440  # 0640 without write bits
    assert stat.S_ISFIFO(fs.getattr(f"{top}/fifo")["st_mode"])
    assert stat.S_ISDIR(fs.getattr(f"{top}/sub")["st_mode"])


def test_read_only_and_errors(repo: Repository, source: tuple[Path, dict[str, bytes]]) -> None:
    src, _ = source
    backup(repo, src)
    fs = SnapshotFS(repo)
    top = "/snapshots/latest/src"
    cases: list[tuple[Callable[[], object], int]] = [
        (lambda: fs.open(f"{top}/a.bin", os.O_WRONLY), errno.EROFS),
        (lambda: fs.open(f"{top}/a.bin", os.O_RDWR), errno.EROFS),
        (lambda: fs.open(top, os.O_RDONLY), errno.EISDIR),
        (lambda: fs.readdir(f"{top}/a.bin", None), errno.ENOTDIR),
        (lambda: fs.getattr(f"{top}/a.bin/x"), errno.ENOTDIR),
        (lambda: fs.getattr(f"{top}/nothing"), errno.ENOENT),
        (lambda: fs.getattr("/elsewhere"), errno.ENOENT),
        (lambda: fs.readlink(f"{top}/a.bin"), errno.EINVAL),
        (lambda: fs.read(f"{top}/a.bin", 1, 0, 999), errno.EBADF),
    ]
    for call, code in cases:
        with pytest.raises(OSError) as failed:
            call()
        assert failed.value.errno == code


def test_a_damaged_chunk_reads_as_eio_and_serves_nothing(
    repo: Repository, source: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    src, files = source
    backup(repo, src)
    index = repo.load_index()
    node = find_node(repo, index, repo.find_snapshot("latest").tree, "src/big.bin")
    second = node.content[1]
    assert isinstance(second, bytes)
    location = index.get(second)
    assert location is not None
    assert isinstance(repo.store, LocalStore)
    pack = repo.store.path_of(pack_name(location.pack))
    raw = bytearray(pack.read_bytes())
    raw[location.entry.offset + location.entry.length // 2] ^= 1
    pack.chmod(0o600)
    pack.write_bytes(bytes(raw))
    fs = SnapshotFS(repo)
    path = "/snapshots/latest/src/big.bin"
    handle = fs.open(path, os.O_RDONLY)
    first_len = index.get(node.content[0]).entry.plain_length  # type: ignore[arg-type,union-attr]
    assert fs.read(path, 4096, 0, handle) == files["big.bin"][:4096]  # the first chunk is fine
    with pytest.raises(OSError) as failed:
        fs.read(path, 8192, first_len - 4096, handle)  # half of it from the damaged chunk
    assert failed.value.errno == errno.EIO
    assert read_all(fs, "/snapshots/latest/src/sub/deeper/small") == b"hello"


def test_new_snapshots_appear_after_the_refresh_interval(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"one")
    backup(repo, tmp_path / "f")
    now = [0.0]
    fs = SnapshotFS(repo, clock=lambda: now[0], refresh_seconds=30)
    assert len(names(fs, "/ids")) == 3
    (tmp_path / "f").write_bytes(b"two, longer")
    newest = backup(repo, tmp_path / "f")
    assert len(names(fs, "/ids")) == 3  # not yet
    now[0] = 31.0
    assert names(fs, "/ids")[-1] == newest[:12]
    assert read_all(fs, "/snapshots/latest/f") == b"two, longer"


def test_fuse_problem_names_what_is_missing(tmp_path: Path) -> None:
    problem = fuse_problem(str(tmp_path / "fuse"))
    assert problem is not None
    assert problem.startswith(f"FUSE is not available: {tmp_path / 'fuse'} missing; install fuse3")


# -- a real mount, through the console script ----------------------------------------------

FUSE_PROBLEM = fuse_problem()
UNMOUNT = shutil.which("fusermount3") or shutil.which("fusermount")
needs_fuse = pytest.mark.skipif(
    FUSE_PROBLEM is not None or UNMOUNT is None,
    reason=f"cannot mount here: {FUSE_PROBLEM or 'no fusermount3'}",
)


@pytest.fixture(scope="module")
def tenant(server: RunningServer) -> AwsCredentials:
    return add_tenant(server.data_dir, "backup-mount")


@pytest.fixture
def cli(server: RunningServer, tenant: AwsCredentials, tmp_path: Path) -> Cli:
    return Cli(env_for(server, tenant, tmp_path / "aws"), tmp_path)


def read_json_object(proc: subprocess.Popen[bytes], seconds: float) -> bytes:
    """The lines of one indented JSON object the process prints (within ``seconds``)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    out = b""
    while not out.endswith(b"}\n"):
        ready, _, _ = select.select([fd], [], [], seconds)  # the pipe itself: no buffer
        data = os.read(fd, 4096) if ready else b""
        if not data:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"no announcement within {seconds} s: {err.decode()}")
        out += data
    return out


def test_mount_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    nodir = str(tmp_path / "nodir")
    proc = cli("backup", "mount", "--repo", str(tmp_path / "none"), nodir, expect=1)
    line = proc.stderr.decode().strip()
    expected = FUSE_PROBLEM or "the mount point must be an existing directory"
    assert expected in line and "\n" not in line
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("x")
    proc = cli("backup", "mount", "--repo", str(tmp_path / "none"), "full", expect=1)
    expected = FUSE_PROBLEM or "the mount point must be an empty, unmounted directory"
    assert expected in proc.stderr.decode()


@needs_fuse
def test_mount_serves_verified_snapshots_read_only(
    cli: Cli,
    server: RunningServer,
    tenant: AwsCredentials,
    tmp_path: Path,
    source: tuple[Path, dict[str, bytes]],
) -> None:
    _, files = source
    key = str(kms_of(server, tenant).create_key()["KeyMetadata"]["Arn"])
    repo = str(tmp_path / "repo")
    cli("backup", "init", "--repo", repo, "--key", key)
    made = cli.json("backup", "create", "--repo", repo, "src")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.Popen(
        [console_script(), "backup", "mount", "--repo", repo, str(mnt), "--json"],
        env=cli.env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        announced = json.loads(read_json_object(proc, 60))
        assert announced == {"mountpoint": str(mnt), "snapshots": 1, "mounted": True}
        root = mnt / "ids" / made["short_id"] / "src"
        for rel, data in files.items():
            assert (root / rel).read_bytes() == data, rel
        latest = mnt / "snapshots" / "latest"
        assert latest.is_symlink() and (latest / "src/big.bin").read_bytes() == files["big.bin"]
        assert os.readlink(root / "link") == "a.bin"
        assert os.stat(root / "hard").st_ino == os.stat(root / "sub/deeper/small").st_ino
        assert sorted(os.listdir(root)) == sorted(
            ["a.bin", "big.bin", "empty", "fifo", "hard", "link", "sparse", "sub"]
        )
        with pytest.raises(OSError) as refused:
            (root / "new").write_bytes(b"x")
        assert refused.value.errno in (errno.EROFS, errno.EACCES)
    finally:
        subprocess.run([UNMOUNT or "fusermount3", "-u", str(mnt)], check=False)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert not os.listdir(mnt)


@needs_fuse
def test_mount_of_an_s3_repository(
    cli: Cli, server: RunningServer, tenant: AwsCredentials, tmp_path: Path
) -> None:
    import boto3

    from strongroom.testing.s3 import run_moto_server

    key = str(kms_of(server, tenant).create_key()["KeyMetadata"]["Arn"])
    (tmp_path / "src").mkdir()
    data = random.Random(3).randbytes(3 * MIB + 5)
    (tmp_path / "src/f.bin").write_bytes(data)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with run_moto_server() as endpoint:
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
        ).create_bucket(Bucket="mounted")  # fmt: skip
        repo = ["--repo", "s3://mounted/acme", "--s3-endpoint", endpoint]
        cli("backup", "init", *repo, "--key", key)
        cli("backup", "create", *repo, "src")
        proc = subprocess.Popen(
            [console_script(), "backup", "mount", *repo, str(mnt), "--json"],
            env=cli.env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        try:
            assert json.loads(read_json_object(proc, 60))["snapshots"] == 1
            assert (mnt / "snapshots/latest/src/f.bin").read_bytes() == data
        finally:
            proc.terminate()  # SIGTERM: libfuse unmounts and the command ends cleanly
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert not os.path.ismount(mnt) and not os.listdir(mnt)


def test_a_failed_refresh_keeps_what_is_shown(
    repo: Repository, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_bytes(b"kept")
    first = backup(repo, tmp_path / "f")
    now = [0.0]
    fs = SnapshotFS(repo, clock=lambda: now[0])
    assert isinstance(repo.store, LocalStore)
    repo.store.path_of(f"snapshots/{first}").write_bytes(b"tampered")
    now[0] = 100.0
    assert names(fs, "/ids")[2:] == [first[:12]]
    assert "not refreshed: Snapshot" in capfd.readouterr().err
    assert read_all(fs, "/snapshots/latest/f") == b"kept"


def _can_hide_dev() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", "mount -t tmpfs none /dev && test ! -e /dev/fuse"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_hide_dev(), reason="needs root and unshare -m to hide /dev/fuse")
def test_without_dev_fuse_the_command_says_so_in_one_line(cli: Cli, tmp_path: Path) -> None:
    """In a mount namespace whose /dev is an empty tmpfs: no /dev/fuse, as in a container."""
    (tmp_path / "mnt").mkdir()
    script = f"mount -t tmpfs none /dev && exec {console_script()} backup mount --repo repo mnt"
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        env=cli.env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.decode() == (
        "error: FUSE is not available: /dev/fuse missing; install fuse3 (apt-get install "
        "fuse3) and load the fuse kernel module (in a container: pass --device /dev/fuse and "
        "CAP_SYS_ADMIN)\n"
    )
