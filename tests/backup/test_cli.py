"""``strongroom backup`` end to end: the console script, a real ``strongroom server`` as KMS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.testing.e2e_server import RunningServer, add_tenant
from strongroom.testing.http import AwsCredentials

from .cli_support import Cli, env_for, kms_of
from .conftest import make_tree


@pytest.fixture(scope="module")
def tenant(server: RunningServer) -> AwsCredentials:
    return add_tenant(server.data_dir, "backup-cli")


@pytest.fixture
def cli(server: RunningServer, tenant: AwsCredentials, tmp_path: Path) -> Cli:
    return Cli(env_for(server, tenant, tmp_path / "aws"), tmp_path)


@pytest.fixture
def key(server: RunningServer, tenant: AwsCredentials) -> str:
    return str(kms_of(server, tenant).create_key()["KeyMetadata"]["Arn"])


def test_init_create_ls_restore_check_diff(cli: Cli, key: str, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    files = make_tree(tmp_path / "src")
    made = cli.json("backup", "init", "--repo", repo, "--key", key)
    assert made["kms_key"] == key and len(made["repository"]) == 32
    cli("backup", "init", "--repo", repo, "--key", key, expect=1)  # never over an existing one
    first = cli.json("backup", "create", "--repo", repo, "--exclude", "*.tmp", "src")
    assert first["summary"]["files_new"] == 5
    (tmp_path / "src/new.txt").write_bytes(b"new file")
    (tmp_path / "src/skip.tmp").write_bytes(b"excluded")
    second = cli.json("backup", "create", "--repo", repo, "-e", "*.tmp", "src")
    assert second["summary"]["files_unmodified"] == 5 and second["summary"]["files_new"] == 1
    stdin = cli.json(
        "backup", "create", "--repo", repo, "--stdin-name", "db.sql", "-", stdin=b"dump " * 99999
    )
    listed = cli.json("backup", "ls", "--repo", repo)
    assert [s["id"] for s in listed] == [first["id"], second["id"], stdin["id"]]
    names = {row["path"] for row in cli.json("backup", "ls", "--repo", repo, second["id"][:10])}
    assert {"src/new.txt", "src/sub/deeper/small", "src/link"} <= names
    assert "src/skip.tmp" not in names

    cli("backup", "restore", "--repo", repo, first["id"][:8], "out")
    for rel, data in files.items():
        assert (tmp_path / "out/src" / rel).read_bytes() == data
    cli("backup", "restore", "--repo", repo, "latest", "db", "--path", "db.sql")
    assert (tmp_path / "db/db.sql").read_bytes() == b"dump " * 99999
    cli("backup", "restore", "--repo", repo, second["id"], "one", "--path", "src/new.txt")
    assert os.listdir(tmp_path / "one") == ["new.txt"]

    changes = cli.json("backup", "diff", "--repo", repo, first["id"], second["id"])
    assert changes["added"] == ["src/new.txt"] and changes["removed"] == []
    report = cli.json("backup", "check", "--repo", repo, "--read-data")
    assert report["ok"] and report["snapshots"] == 3 and report["blobs_read"] > 5


def test_errors_are_one_line(cli: Cli, key: str, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    out = cli("backup", "ls", "--repo", repo, expect=1)
    assert b"no repository there" in out.stderr
    cli("backup", "init", "--repo", repo, "--key", key)
    out = cli("backup", "restore", "--repo", repo, "latest", "x", expect=1)
    assert b"no snapshots" in out.stderr
    out = cli("backup", "forget", "--repo", repo, expect=1)
    assert b"--keep" in out.stderr
