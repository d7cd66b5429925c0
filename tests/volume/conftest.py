"""Volume fixtures: a real ``strongroom server`` with two tenants, LUKS2 image files made by
Debian's ``cryptsetup``, the ``strongroom`` console script in a subprocess, and oracles
(``luksDump --dump-volume-key``, the header bytes) to check what reached the disk."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.testing.e2e_server import RunningServer, add_tenant, start_server
from strongroom.testing.http import AwsCredentials, kms_client
from strongroom.testing.luks import run
from strongroom.testing.server import console_script

REGION = "eu-west-1"

Cli = Callable[..., subprocess.CompletedProcess[bytes]]
"""The ``cli`` fixture: ``cli(*args, tenant=..., stdin=b"", expect=0, env=None)``."""


def bin_dir() -> str:
    """The directory of this environment's console scripts (strongroom, the Clevis pin)."""
    return str(Path(console_script()).parent)


@dataclass(frozen=True)
class Tenant:
    """A tenant of the module's server: its access key, a KMS key and a client."""

    credentials: AwsCredentials
    key_arn: str
    kms: Any


@dataclass(frozen=True)
class VolumeWorld:
    """The server, two tenants and the environment the CLI runs with."""

    server: RunningServer
    a: Tenant
    b: Tenant
    home: Path

    def env(self, tenant: Tenant | AwsCredentials, **extra: str) -> dict[str, str]:
        """The AWS chain for ``tenant`` at the server (nothing of the machine's own)."""
        creds = tenant.credentials if isinstance(tenant, Tenant) else tenant
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environ.update(
            AWS_ACCESS_KEY_ID=creds.access_key_id,
            AWS_SECRET_ACCESS_KEY=creds.secret_access_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL_KMS=self.server.endpoint.url,
            AWS_CA_BUNDLE=str(self.server.endpoint.ca_bundle),
            AWS_CONFIG_FILE=str(self.home / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.home / "none"),
            AWS_EC2_METADATA_DISABLED="true",
            PATH=f"{bin_dir()}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin",
            COLUMNS="250",
        )
        environ.update(extra)
        return environ

    def new_key(self, tenant: Tenant) -> str:
        """Another symmetric key of ``tenant``."""
        return str(tenant.kms.create_key()["KeyMetadata"]["Arn"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VolumeWorld]:
    """A ``strongroom server`` with tenants A and B, each with one key."""
    base = tmp_path_factory.mktemp("volume-world")
    with start_server(base / "data") as server:
        tenants = []
        for name in ("vol-a", "vol-b"):
            creds = add_tenant(server.data_dir, name)
            kms = kms_client(server.endpoint, creds, REGION)
            tenants.append(Tenant(creds, str(kms.create_key()["KeyMetadata"]["Arn"]), kms))
        try:
            yield VolumeWorld(server, tenants[0], tenants[1], base)
        finally:
            for tenant in tenants:
                tenant.kms.close()


@pytest.fixture
def cli(world: VolumeWorld) -> Cli:
    """``cli(*args, tenant=world.a, stdin=b"", expect=0)``: the strongroom console script."""

    def call(
        *args: str,
        tenant: Tenant | AwsCredentials | None = None,
        stdin: bytes = b"",
        expect: int = 0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        environ = env if env is not None else world.env(tenant or world.a)
        return run([console_script(), *args], stdin=stdin, env=environ, expect=expect)

    return call
