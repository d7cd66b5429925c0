"""What docs/kubernetes.md promises a node: an access key that may only Decrypt with one
volume's encryption context unlocks that volume and nothing else (a grant, or a key
policy condition)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from strongroom.testing.e2e_server import add_access_key
from strongroom.testing.luks import cryptsetup_missing
from strongroom.volume.header import read_header

pytestmark = pytest.mark.skipif(
    cryptsetup_missing(), reason="cryptsetup is not installed (scripts/test.sh installs it)"
)

if TYPE_CHECKING:
    from tests.volume.conftest import Cli, VolumeWorld


def two_volumes(cli: Cli, world: VolumeWorld, tmp_path: Path, key: str) -> tuple[Path, Path, str]:
    first, second = tmp_path / "pv-1.img", tmp_path / "pv-2.img"
    for image in (first, second):
        cli("volume", "format", str(image), "--size", "32M", "-k", key, "-c", "pvc=db")
    return first, second, read_header(first).uuid


def test_a_grant_for_one_volume(cli: Cli, world: VolumeWorld, tmp_path: Path) -> None:
    key = world.new_key(world.a)
    first, second, uuid = two_volumes(cli, world, tmp_path, key)
    account = world.a.credentials.account_id
    node = add_access_key(world.server.data_dir, account, "node-7")
    world.a.kms.create_grant(
        KeyId=key,
        GranteePrincipal=f"arn:aws:iam::{account}:user/node-7",
        Operations=["Decrypt"],
        Constraints={"EncryptionContextSubset": {"strongroom:volume": uuid}},
        Name=f"volume-{uuid}",
    )
    # the default key policy allows the whole account; narrow it to the tenant's admin
    world.a.kms.put_key_policy(KeyId=key, PolicyName="default", Policy=admin_only(account))
    cli("volume", "pass", str(first), tenant=node)
    out = cli("volume", "pass", str(second), tenant=node, expect=1)
    assert b"AccessDenied" in out.stderr or b"not authorized" in out.stderr
    out = cli("volume", "rewrap", str(first), tenant=node, expect=1)
    out = cli(
        "volume",
        "format",
        str(tmp_path / "n.img"),
        "--size",
        "32M",
        "-k",
        key,
        tenant=node,
        expect=1,
    )
    assert b"not authorized" in out.stderr


def admin_only(account: str, extra: list[dict[str, Any]] | None = None) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:user/app"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                *(extra or []),
            ],
        }
    )


def test_a_key_policy_condition_on_the_volume(cli: Cli, world: VolumeWorld, tmp_path: Path) -> None:
    key = world.new_key(world.a)
    first, second, uuid = two_volumes(cli, world, tmp_path, key)
    account = world.a.credentials.account_id
    node = add_access_key(world.server.data_dir, account, "node-8")
    statement = {
        "Sid": "NodeUnlocksOneVolume",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:user/node-8"},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:EncryptionContext:strongroom:volume": uuid,
                "kms:EncryptionContext:strongroom:tenant": account,
            }
        },
    }
    world.a.kms.put_key_policy(
        KeyId=key, PolicyName="default", Policy=admin_only(account, [statement])
    )
    cli("volume", "pass", str(first), tenant=node)
    cli("volume", "pass", str(second), tenant=node, expect=1)
    cli("volume", "pass", str(second))  # the tenant's admin still can
