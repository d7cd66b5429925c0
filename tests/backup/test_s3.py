"""An S3 repository on a moto server, end to end through the CLI, with S3 Object Lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from strongroom.testing.e2e_server import RunningServer, add_tenant
from strongroom.testing.s3 import run_moto_server

from .cli_support import Cli, env_for, kms_of


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip


@pytest.fixture
def cli(server: RunningServer, tmp_path: Path, request: pytest.FixtureRequest) -> Cli:
    creds = add_tenant(server.data_dir, f"s3-{request.node.name[:20]}")
    cli = Cli(env_for(server, creds, tmp_path / "aws"), tmp_path)
    cli.key = kms_of(server, creds).create_key()["KeyMetadata"]["Arn"]  # type: ignore[attr-defined]
    return cli


def source(root: Path, tag: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "f.txt").write_text(tag * 1000)
    (root / "g.bin").write_bytes(tag.encode() * 200000)


def test_s3_repository_round_trip_and_maintenance(
    cli: Cli, s3_endpoint: str, tmp_path: Path
) -> None:
    s3_client(s3_endpoint).create_bucket(Bucket="plain")
    repo = ["--repo", "s3://plain/tenants/acme", "--s3-endpoint", s3_endpoint]
    cli("backup", "init", *repo, "--key", cli.key)  # type: ignore[attr-defined]
    ids = []
    for tag in ("one", "two", "three"):
        source(tmp_path / "src", tag)
        ids.append(cli.json("backup", "create", *repo, "src")["id"])
    keys = [o["Key"] for o in s3_client(s3_endpoint).list_objects_v2(Bucket="plain")["Contents"]]
    assert all(k.startswith("tenants/acme/") for k in keys)
    cli("backup", "restore", *repo, ids[0][:10], "out")
    assert (tmp_path / "out/src/f.txt").read_text() == "one" * 1000
    forgot = cli.json("backup", "forget", *repo, "--keep-last", "1")
    assert sorted(forgot["removed"]) == sorted(ids[:2]) and forgot["kept"] == [ids[2]]
    pruned = cli.json("backup", "prune", *repo)
    assert pruned["removed_packs"] and pruned["bytes_freed"] > 0
    report = cli.json("backup", "check", *repo, "--read-data")
    assert report["ok"] and report["snapshots"] == 1 and not report["warnings"]
    cli("backup", "restore", *repo, "latest", "last")
    assert (tmp_path / "last/src/g.bin").read_bytes() == b"three" * 200000


def test_object_lock_retention_is_kept(cli: Cli, s3_endpoint: str, tmp_path: Path) -> None:
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    repo = ["--repo", "s3://locked/acme", "--s3-endpoint", s3_endpoint]
    cli("backup", "init", *repo, "--key", cli.key)  # type: ignore[attr-defined]
    source(tmp_path / "src", "kept")
    retained = cli.json("backup", "create", *repo, "--retain-days", "3", "src")
    assert retained["retain_until"]
    source(tmp_path / "src", "new")
    (tmp_path / "src/g.bin").unlink()
    cli.json("backup", "create", *repo, "src")
    packs = [o["Key"] for o in s3.list_objects_v2(Bucket="locked", Prefix="acme/data/")["Contents"]]
    locked = [
        k for k in packs if "ObjectLockRetainUntilDate" in s3.head_object(Bucket="locked", Key=k)
    ]
    assert locked  # every pack the retained snapshot uses carries its retention
    for key in locked:
        assert s3.head_object(Bucket="locked", Key=key)["ObjectLockMode"] == "GOVERNANCE"
    forgot = cli.json("backup", "forget", *repo, "--keep-last", "1")
    assert forgot["retained"] == [retained["id"]] and forgot["removed"] == []
    pruned = cli.json("backup", "prune", *repo)
    assert not set(pruned["removed_packs"]) & {k.rsplit("/", 1)[1] for k in locked}
    assert cli.json("backup", "check", *repo, "--read-data")["ok"]
    cli("backup", "restore", *repo, retained["id"], "out")
    assert (tmp_path / "out/src/g.bin").read_bytes() == b"kept" * 200000


def test_retention_needs_s3(cli: Cli, tmp_path: Path) -> None:
    cli("backup", "init", "--repo", "repo", "--key", cli.key)  # type: ignore[attr-defined]
    source(tmp_path / "src", "x")
    out = cli("backup", "create", "--repo", "repo", "--retain-days", "2", "src", expect=1)
    assert b"S3" in out.stderr
