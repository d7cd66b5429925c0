"""``strongroom user-keys`` and ``strongroom objects put|get --user`` against a real kms_server.

The console script runs in a subprocess with the standard AWS environment pointing at a
``strongroom server`` started for this module.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from strongroom.testing.server import ServerInfo, client_for, console_script
from strongroom.testing.server import aws_env as server_env


def script() -> str:
    return console_script()


@pytest.fixture(scope="module")
def key_arn(kms_server: ServerInfo, kms_key_arn: str) -> str:
    """The module's key, also named alias/people."""
    kms = client_for(kms_server)
    try:
        kms.create_alias(AliasName="alias/people", TargetKeyId=kms_key_arn)
        return kms_key_arn
    finally:
        kms.close()


@pytest.fixture(scope="module")
def env(kms_server: ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The AWS chain without an endpoint or CA: the tests give --endpoint/--ca-bundle."""
    return server_env(
        kms_server.credentials,
        tmp_path_factory.mktemp("aws"),
        AWS_DEFAULT_REGION=kms_server.credentials["Region"],
        COLUMNS="200",
    )


def run(
    env: dict[str, str], cwd: Path, *args: str, stdin: bytes = b"", expect: int = 0
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        [script(), *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert proc.returncode == expect, (args, proc.returncode, proc.stderr.decode())
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def test_create_exists_destroy_count(
    kms_server: ServerInfo, key_arn: str, env: dict[str, str], tmp_path: Path
) -> None:
    where = ["--endpoint", kms_server.endpoint_url, "--ca-bundle", str(kms_server.ca_bundle)]
    key = ["--key", "alias/people"]
    created = run(
        env,
        tmp_path,
        "user-keys", "create", *key, "-u", "u1", "--user", "u2", "--users-from", "-", *where,
        "--json",
        stdin=b"u3\n\nu2\r\n",
    )  # fmt: skip
    assert json.loads(created.stdout) == {"Key": "alias/people", "Requested": 4, "Created": 3}

    # the endpoint and CA bundle may come from the environment instead
    chain = {**env, "AWS_ENDPOINT_URL_KMS": kms_server.endpoint_url}
    chain["AWS_CA_BUNDLE"] = str(kms_server.ca_bundle)
    destroyed = run(chain, tmp_path, "user-keys", "destroy", *key, "-u", "u1", "-u", "nobody")
    assert destroyed.stdout.decode().split("\n") == ["destroyed  u1", "no key     nobody", ""]

    exists = run(
        chain, tmp_path, "user-keys", "exists", "-k", key_arn, "-u", "u1", "-u", "u2", "--json"
    )
    assert json.loads(exists.stdout)["Users"] == [
        {"UserId": "u1", "Exists": False},
        {"UserId": "u2", "Exists": True},
    ]
    count = run(chain, tmp_path, "user-keys", "count", *key)
    assert count.stdout == b"2\n"

    missing = run(chain, tmp_path, "user-keys", "count", "-k", "alias/missing", expect=1)
    assert missing.stderr.startswith(b"error: ") and b"alias/missing" in missing.stderr


def test_objects_for_a_user_die_with_the_user_key(
    kms_server: ServerInfo, key_arn: str, env: dict[str, str], tmp_path: Path
) -> None:
    chain = {**env, "AWS_ENDPOINT_URL_KMS": kms_server.endpoint_url}
    chain["AWS_CA_BUNDLE"] = str(kms_server.ca_bundle)
    store = ["--dir", str(tmp_path / "objects")]
    for user in ("carol", "dave"):
        run(
            chain, tmp_path, "objects", "put", *store, "-k", key_arn, "--user", user,
            "--create-user-key", f"{user}/cv", "-", stdin=f"{user}'s cv".encode(),
        )  # fmt: skip
    run(chain, tmp_path, "user-keys", "destroy", "-k", key_arn, "-u", "carol")
    gone = run(chain, tmp_path, "objects", "get", *store, "--user", "carol", "carol/cv", expect=1)
    assert b"destroyed" in gone.stderr
    # dave's object still reads, also with plain Decrypt (no --user)
    assert run(chain, tmp_path, "objects", "get", *store, "dave/cv").stdout == b"dave's cv"


def test_help_shows_examples() -> None:
    from typer.testing import CliRunner

    from strongroom.cli.main import build_app

    app, runner = build_app(), CliRunner()
    assert "user-keys" in runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for command in ("create", "destroy", "exists", "count"):
        result = runner.invoke(app, ["user-keys", command, "--help"], env={"COLUMNS": "200"})
        text = " ".join(result.output.split())
        assert result.exit_code == 0 and f"strongroom user-keys {command} " in text, command
        assert "--endpoint" in text and "--ca-bundle" in text and "--json" in text, command
