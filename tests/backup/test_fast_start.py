"""``backup create``'s fast start (no typer) behaves as the typer command does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strongroom.cli.backup_fast import parse_create
from strongroom.testing.e2e_server import RunningServer, add_tenant
from strongroom.testing.http import AwsCredentials

from .cli_support import Cli, env_for, kms_of


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["src"], ({}, ["src"])),
        (
            ["--repo", "/r", "-e", "*.tmp", "--exclude=*.log", "--tag", "t", "a", "b", "--json"],
            (
                {"--repo": ["/r"], "--exclude": ["*.tmp", "*.log"], "--tag": ["t"], "--json": []},
                ["a", "b"],
            ),
        ),
        (
            ["-r", "/r", "--threads", "3", "--no-cache", "--cache-dir", "/c", "x"],
            (
                {"--repo": ["/r"], "--threads": ["3"], "--no-cache": [], "--cache-dir": ["/c"]},
                ["x"],
            ),
        ),
        (["-H", "web1", "--tag=a", "x"], ({"--host": ["web1"], "--tag": ["a"]}, ["x"])),
    ],
)
def test_parse_create(args: list[str], expected: object) -> None:
    assert parse_create(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        [],  # typer says what is missing
        ["-"],  # stdin
        ["a", "-"],
        ["--help"],
        ["--stdin-name", "x", "-"],
        ["--retain-days", "3", "a"],
        ["--endpoint", "https://kms", "a"],
        ["--repo", "/a", "--repo", "/b", "x"],
        ["--json", "--json", "x"],
        ["--threads", "0", "x"],
        ["--threads", "two", "x"],
        ["-r=/r", "x"],
        ["--repo"],
        ["--", "x"],
        ["--jso", "x"],
        ["--host", "a", "--host", "b", "x"],
        ["--host=", "x"],  # typer says why
    ],
)
def test_anything_unusual_goes_to_typer(args: list[str]) -> None:
    assert parse_create(args) is None


@pytest.fixture(scope="module")
def tenant(server: RunningServer) -> AwsCredentials:
    return add_tenant(server.data_dir, "backup-fast")


def test_both_paths_print_the_same(
    server: RunningServer, tenant: AwsCredentials, tmp_path: Path
) -> None:
    cli = Cli(env_for(server, tenant, tmp_path / "aws"), tmp_path)
    key = str(kms_of(server, tenant).create_key()["KeyMetadata"]["Arn"])
    repo = str(tmp_path / "repo")
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.txt").write_text("a" * 5000)
    cli("backup", "init", "--repo", repo, "--key", key)
    endpoint = cli.env["AWS_ENDPOINT_URL_KMS"]
    fast = cli.json("backup", "create", "--repo", repo, "-H", "web1", "src")
    typer_made = cli.json(
        "backup", "create", "--repo", repo, "--endpoint", endpoint, "--host", "web1", "src"
    )
    assert set(fast) == set(typer_made) and fast["errors"] == typer_made["errors"] == []
    assert fast["hostname"] == typer_made["hostname"] == "web1"
    assert fast["summary"]["files_new"] == 1 and typer_made["summary"]["files_unmodified"] == 1
    line = cli("backup", "create", "--repo", repo, "src").stdout.decode()
    assert line.startswith("snapshot ") and line.endswith(
        " saved: 0 new, 0 changed, 1 unmodified files; 0 bytes added (0 stored)\n"
    )
    missing = str(tmp_path / "none")
    errors = [
        cli("backup", "create", "--repo", missing, *extra, "src", expect=1).stderr
        for extra in ([], ["--endpoint", endpoint])
    ]
    assert errors[0] == errors[1] and errors[0].startswith(b"error: ") and b"init" in errors[0]
    listed = cli.json("backup", "ls", "--repo", repo)
    assert [s["id"] for s in listed][:2] == [fast["id"], typer_made["id"]]
    assert json.loads(cli("backup", "ls", "--repo", repo, "--json").stdout) == listed
