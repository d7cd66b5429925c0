"""Crypto-shredding: after ``shred`` or disabling the key, no Strongroom path reaches the
volume key; other volumes (of this tenant under other keys, of other tenants) unlock as
before."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from strongroom.testing.luks import cryptsetup_missing, luks_image, run, volume_key
from strongroom.volume.header import read_header

pytestmark = pytest.mark.skipif(
    cryptsetup_missing(), reason="cryptsetup is not installed (scripts/test.sh installs it)"
)

if TYPE_CHECKING:
    from tests.volume.conftest import Cli, Tenant, VolumeWorld


def formatted(
    cli: Cli, world: VolumeWorld, path: Path, key: str, tenant: Tenant | None = None
) -> bytes:
    cli("volume", "format", str(path), "--size", "32M", "-k", key, tenant=tenant or world.a)
    return cli("volume", "pass", str(path), tenant=tenant or world.a).stdout


def test_shred_wipes_the_keyslot_and_the_token_and_nothing_else(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = luks_image(tmp_path / "s.img", b"recovery passphrase")
    master = volume_key(image, b"recovery passphrase")
    cli(
        "volume",
        "bind",
        str(image),
        "-k",
        world.a.key_arn,
        "--key-file",
        "-",
        stdin=b"recovery passphrase",
    )
    header = read_header(image)
    wrapped = header.tokens[0]["wrapped_key"].encode()
    passphrase = cli("volume", "pass", str(image)).stdout
    other = tmp_path / "other.img"
    other_pass = formatted(cli, world, other, world.a.key_arn)
    theirs = tmp_path / "theirs.img"
    their_pass = formatted(cli, world, theirs, world.b.key_arn, tenant=world.b)

    out = cli("volume", "shred", str(image), "--yes", "--json")
    assert json.loads(out.stdout)["Keyslot"] == 1
    after = read_header(image)
    assert after.keyslots == [0] and after.tokens == {}
    # neither the wrapped key (in either header copy) nor the keyslot survives: the
    # passphrase recovered before the shred no longer opens anything
    raw = image.read_bytes()
    assert wrapped not in raw and base64.b64decode(wrapped) not in raw
    run(
        ["cryptsetup", "open", "--test-passphrase", "--key-file", "-", str(image)],
        stdin=passphrase,
        expect=2,
    )
    out = cli("volume", "pass", str(image), expect=1)
    assert b"no Strongroom token" in out.stderr
    # the volume itself is intact for its other keyslot; the others unlock as before
    assert volume_key(image, b"recovery passphrase") == master
    assert cli("volume", "pass", str(other)).stdout == other_pass
    assert cli("volume", "pass", str(theirs), tenant=world.b).stdout == their_pass


def test_shred_refuses_the_last_keyslot_unless_asked(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = tmp_path / "only.img"
    passphrase = formatted(cli, world, image, world.a.key_arn)
    before = image.read_bytes()[: 16 << 20]
    out = cli("volume", "shred", str(image), "--yes", expect=1)
    assert b"last one" in out.stderr and b"--last-keyslot" in out.stderr
    out = cli("volume", "shred", str(image), expect=1)  # no --yes, no terminal
    assert b"--yes" in out.stderr
    assert image.read_bytes()[: 16 << 20] == before
    cli("volume", "shred", str(image), "--yes", "--last-keyslot")
    assert read_header(image).keyslots == []
    run(
        ["cryptsetup", "open", "--test-passphrase", "--key-file", "-", str(image)],
        stdin=passphrase,
        expect=1,  # no keyslot left at all
    )


def test_disabling_the_key_shreds_every_volume_under_it_only(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    doomed_key, kept_key = world.new_key(world.a), world.new_key(world.a)
    first, second = tmp_path / "d1.img", tmp_path / "d2.img"
    formatted(cli, world, first, doomed_key)
    formatted(cli, world, second, doomed_key)
    kept = tmp_path / "kept.img"
    kept_pass = formatted(cli, world, kept, kept_key)
    theirs = tmp_path / "b.img"
    their_pass = formatted(cli, world, theirs, world.b.key_arn, tenant=world.b)
    before = read_header(first).tokens
    env = world.env(world.a)
    pin = ["clevis-encrypt-strongroom"]
    doomed_jwe = run([*pin, json.dumps({"key": doomed_key})], stdin=b"s1", env=env).stdout
    kept_jwe = run([*pin, json.dumps({"key": kept_key})], stdin=b"s2", env=env).stdout
    run(["clevis-decrypt-strongroom"], stdin=doomed_jwe, env=env)

    cli("volume", "shred", str(first), "--yes", "--disable-key", "--last-keyslot")
    meta = world.a.kms.describe_key(KeyId=doomed_key)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"
    # the other volume under the key still has its token but the KMS refuses it
    out = cli("volume", "pass", str(second), expect=1)
    assert b"disabled" in out.stderr.lower()
    out = cli("volume", "status", str(second), "--check", "--json")
    assert json.loads(out.stdout)["Tokens"][0]["Unlocks"] is False
    # the Clevis pin's path is shredded too: a JWE under that key cannot be opened
    out = run(["clevis-decrypt-strongroom"], stdin=doomed_jwe, env=env, expect=1)
    assert b"disabled" in out.stderr.lower() and not out.stdout
    assert run(["clevis-decrypt-strongroom"], stdin=kept_jwe, env=env).stdout == b"s2"
    assert before and read_header(first).tokens == {}
    assert cli("volume", "pass", str(kept)).stdout == kept_pass
    assert cli("volume", "pass", str(theirs), tenant=world.b).stdout == their_pass
    # re-enabling brings the second volume back: disabling is reversible, shred is not
    world.a.kms.enable_key(KeyId=doomed_key)
    cli("volume", "pass", str(second))
    out = cli("volume", "pass", str(first), expect=1)
    assert b"no Strongroom token" in out.stderr


def test_scheduled_deletion_makes_the_token_useless(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    key = world.new_key(world.a)
    image = tmp_path / "del.img"
    formatted(cli, world, image, key)
    world.a.kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    out = cli("volume", "pass", str(image), expect=1)
    assert b"pending deletion" in out.stderr.lower() or b"pendingdeletion" in out.stderr.lower()
    assert os.path.exists(image)
