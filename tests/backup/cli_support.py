"""Running ``strongroom backup`` in a subprocess against a real server, as a tenant."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3

from strongroom.testing.e2e_server import RunningServer
from strongroom.testing.http import AwsCredentials
from strongroom.testing.server import aws_env, console_script

REGION = "us-east-1"


def env_for(
    server: RunningServer, creds: AwsCredentials, folder: Path, **extra: str
) -> dict[str, str]:
    """The AWS chain of ``creds`` at ``server`` (KMS endpoint, CA bundle, region)."""
    folder.mkdir(parents=True, exist_ok=True)
    return aws_env(
        {"AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key},
        folder,
        AWS_DEFAULT_REGION=REGION,
        AWS_CA_BUNDLE=str(server.endpoint.ca_bundle),
        AWS_ENDPOINT_URL_KMS=server.endpoint.url,
        COLUMNS="200",
        XDG_CACHE_HOME=str(folder / "cache"),
        **extra,
    )


def kms_of(server: RunningServer, creds: AwsCredentials) -> Any:
    """A boto3 KMS client of ``creds``."""
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint.url,
        verify=str(server.endpoint.ca_bundle),
        region_name=REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
    )


class Cli:
    """``cli("backup", "ls", ..., expect=0)`` with one tenant's environment."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    def __call__(
        self, *args: str, stdin: bytes = b"", expect: int | None = 0, timeout: float = 180
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [console_script(), *args],
            input=stdin,
            capture_output=True,
            env=self.env,
            cwd=self.cwd,
            timeout=timeout,
            check=False,
        )
        if expect is not None:
            assert proc.returncode == expect, (args, proc.returncode, proc.stderr.decode())
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
        return proc

    def json(self, *args: str, stdin: bytes = b"", expect: int = 0) -> Any:
        return json.loads(self(*args, "--json", stdin=stdin, expect=expect).stdout)
