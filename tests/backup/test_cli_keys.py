"""Keys from the KMS, end to end: crypto-shredding, rotate-key, and write-only agents.

The KMS is a real ``strongroom server``; every command runs as a console script with the
standard AWS environment of one principal.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from strongroom.testing.e2e_server import RunningServer, add_access_key, add_tenant
from strongroom.testing.http import AwsCredentials
from strongroom.testing.server import console_script

from .cli_support import Cli, env_for, kms_of


def tenant_cli(server: RunningServer, creds: AwsCredentials, where: Path) -> Cli:
    return Cli(env_for(server, creds, where / f"aws-{creds.access_key_id}"), where)


def make_source(root: Path, tag: str) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text(f"alpha {tag}\n" * 1000)
    (root / "sub/b.bin").write_bytes(tag.encode() * 300000)


def test_crypto_shredding_is_per_tenant(server: RunningServer, tmp_path: Path) -> None:
    a_creds, b_creds = (
        add_tenant(server.data_dir, "shred-a"),
        add_tenant(server.data_dir, "shred-b"),
    )
    a, b = tenant_cli(server, a_creds, tmp_path), tenant_cli(server, b_creds, tmp_path)
    kms_a, kms_b = kms_of(server, a_creds), kms_of(server, b_creds)
    key_a = kms_a.create_key()["KeyMetadata"]["Arn"]
    key_b = kms_b.create_key()["KeyMetadata"]["Arn"]
    make_source(tmp_path / "src", "same data")
    for cli, key, repo in ((a, key_a, "repo-a"), (b, key_b, "repo-b")):
        cli("backup", "init", "--repo", repo, "--key", key)
        cli("backup", "create", "--repo", repo, "src")
    # no dedup across tenants: same data, unrelated blob ids and packs
    names_a = {p.name for p in (tmp_path / "repo-a/data.d").rglob("*.o")}
    assert names_a and names_a.isdisjoint(p.name for p in (tmp_path / "repo-b").rglob("*.o"))
    # tenant B cannot use tenant A's repository at all
    assert b("backup", "ls", "--repo", "repo-a", expect=1).stderr != b""
    kms_a.disable_key(KeyId=key_a)
    for args in (["ls"], ["restore", "latest", "out-a"], ["check", "--read-data"]):
        out = a("backup", *args, "--repo", "repo-a", expect=1)
        assert b"disabled" in out.stderr.lower(), out.stderr
    assert not (tmp_path / "out-a").exists() or not any((tmp_path / "out-a").iterdir())
    kms_a.enable_key(KeyId=key_a)
    a("backup", "ls", "--repo", "repo-a")  # still there: only the key was off
    kms_a.schedule_key_deletion(KeyId=key_a, PendingWindowInDays=7)
    a("backup", "restore", "--repo", "repo-a", "latest", "out-a", expect=1)
    b("backup", "restore", "--repo", "repo-b", "latest", "out-b")  # the other tenant: untouched
    assert (tmp_path / "out-b/src/a.txt").read_text() == "alpha same data\n" * 1000


def test_rotate_key_rewraps_without_rewriting_packs(server: RunningServer, tmp_path: Path) -> None:
    creds = add_tenant(server.data_dir, "rotate")
    cli, kms = tenant_cli(server, creds, tmp_path), kms_of(server, creds)
    old = kms.create_key()["KeyMetadata"]["Arn"]
    new = kms.create_key()["KeyMetadata"]["Arn"]
    make_source(tmp_path / "src", "rotate")
    cli("backup", "init", "--repo", "repo", "--key", old)
    cli("backup", "create", "--repo", "repo", "src")
    packs = sorted(p.read_bytes() for p in (tmp_path / "repo/data.d").rglob("*.o"))
    kms.rotate_key_on_demand(KeyId=old)
    same = cli.json("backup", "rotate-key", "--repo", "repo")
    assert same == {"rewrapped": 2, "kms_keys": [old]}
    moved = cli.json("backup", "rotate-key", "--repo", "repo", "--new-key", new)
    assert moved == {"rewrapped": 2, "kms_keys": [new]}
    assert sorted(p.read_bytes() for p in (tmp_path / "repo/data.d").rglob("*.o")) == packs
    assert len(list((tmp_path / "repo/keys.d").iterdir())) == 2
    kms.disable_key(KeyId=old)  # the old key is no longer needed for anything
    cli("backup", "create", "--repo", "repo", "src")
    cli("backup", "restore", "--repo", "repo", "latest", "out")
    assert (tmp_path / "out/src/sub/b.bin").read_bytes() == b"rotate" * 300000
    assert cli.json("backup", "check", "--repo", "repo", "--read-data")["ok"]


def write_only_policy(account: str, owner: str, agent: str) -> str:
    """The recipe of docs/operations.md: the agent may make data secrets, unwrap only the
    index secret; the owner may do everything."""
    prefix = f"arn:aws:iam::{account}:user/"
    purpose = "kms:EncryptionContext:strongroom:backup-purpose"
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": prefix + owner},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "AgentNewSessions", "Effect": "Allow", "Principal": {"AWS": prefix + agent},
             "Action": "kms:GenerateDataKey", "Resource": "*",
             "Condition": {"StringEquals": {purpose: "data"}}},
            {"Sid": "AgentIndexSecret", "Effect": "Allow", "Principal": {"AWS": prefix + agent},
             "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {"StringEquals": {purpose: "index"}}},
        ],
    })  # fmt: skip


def audit_events(server: RunningServer, operation: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [console_script(), "admin", "audit", "show", "--data-dir", str(server.data_dir),
         "--operation", operation, "--limit", "10000", "--json"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return [row["Event"] for row in json.loads(out.stdout)["Events"]]


def test_write_only_agent_backs_up_but_cannot_read(server: RunningServer, tmp_path: Path) -> None:
    owner_creds = add_tenant(server.data_dir, "write-only")
    agent_creds = add_access_key(server.data_dir, owner_creds.account_id, "backup-agent")
    owner, agent = (
        tenant_cli(server, owner_creds, tmp_path),
        tenant_cli(server, agent_creds, tmp_path),
    )
    policy = write_only_policy(owner_creds.account_id, "app", "backup-agent")
    key = kms_of(server, owner_creds).create_key(Policy=policy)["KeyMetadata"]["Arn"]
    make_source(tmp_path / "src", "agent")
    owner("backup", "init", "--repo", "repo", "--key", key)
    first = agent.json("backup", "create", "--repo", "repo", "src")  # the agent writes...
    (tmp_path / "src/a.txt").write_text("changed")
    second = agent.json("backup", "create", "--repo", "repo", "src")  # ...incrementally
    assert second["summary"]["files_unmodified"] == 1 and second["summary"]["files_changed"] == 1
    before = len([e for e in audit_events(server, "Decrypt") if e.get("result") != "ok"])
    for args in (["ls"], ["restore", "latest", "stolen"], ["check", "--read-data"]):
        out = agent("backup", *args, "--repo", "repo", expect=1)  # ...but reads nothing
        said = out.stdout + out.stderr  # check reports on stdout, the others on stderr
        assert b"AccessDenied" in said or b"not authorized" in said or b"policy" in said, said
    assert not (tmp_path / "stolen").exists() or not any((tmp_path / "stolen").rglob("*.txt"))
    refused = [e for e in audit_events(server, "Decrypt") if e.get("result") != "ok"]
    assert len(refused) >= before + 3  # every refused unwrap is in the audit log
    assert all(e.get("account") == owner_creds.account_id for e in refused[before:])
    owner("backup", "restore", "--repo", "repo", first["id"], "mine")  # the owner reads all
    assert (tmp_path / "mine/src/a.txt").read_text() == "alpha agent\n" * 1000
    assert owner.json("backup", "check", "--repo", "repo", "--read-data")["snapshots"] == 2


@pytest.mark.parametrize("n", [2])
def test_concurrent_writers_both_succeed(server: RunningServer, tmp_path: Path, n: int) -> None:
    creds = add_tenant(server.data_dir, "concurrent")
    cli = tenant_cli(server, creds, tmp_path)
    key = kms_of(server, creds).create_key()["KeyMetadata"]["Arn"]
    cli("backup", "init", "--repo", "repo", "--key", key)
    for i in range(n):
        make_source(tmp_path / f"src{i}", f"writer {i}")
    procs = [
        subprocess.Popen(
            [console_script(), "backup", "create", "--repo", "repo", "--json", f"src{i}"],
            cwd=tmp_path,
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(n)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [r[1] for r in results]
    ids = {json.loads(out)["id"] for out, _ in results}
    assert len(ids) == n
    assert cli.json("backup", "check", "--repo", "repo", "--read-data")["ok"]
    for i, snapshot_id in enumerate(json.loads(out)["id"] for out, _ in results):
        cli("backup", "restore", "--repo", "repo", snapshot_id, f"out{i}")
        assert (
            tmp_path / f"out{i}/src{i}/sub/b.bin"
        ).read_bytes() == f"writer {i}".encode() * 300000
