"""``strongroom volume`` against a real server, on LUKS2 image files made and checked by
Debian's cryptsetup (``luksDump --dump-volume-key`` is the oracle of which volume key a
passphrase reaches)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from strongroom.testing.luks import cryptsetup_missing, digest, luks_image, run, volume_key
from strongroom.volume.cryptsetup import device_mapper_available
from strongroom.volume.header import read_header

if TYPE_CHECKING:
    from tests.volume.conftest import Cli, VolumeWorld

pytestmark = pytest.mark.skipif(
    cryptsetup_missing(), reason="cryptsetup is not installed (scripts/test.sh installs it)"
)


def token_of(device: Path, token_id: int = 0) -> dict[str, Any]:
    return read_header(device).tokens[token_id]


def test_format_makes_a_luks2_volume_whose_passphrase_the_kms_wraps(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = tmp_path / "disk.img"
    out = cli("volume", "format", str(image), "--size", "64M", "--key", world.a.key_arn)
    out = cli("volume", "status", str(image), "--json")
    shown = json.loads(out.stdout)
    assert image.stat().st_size == 64 << 20
    assert stat.S_IMODE(image.stat().st_mode) == 0o600
    header = read_header(image)
    assert shown["Uuid"] == header.uuid and shown["Keyslots"] == [0]
    token = header.tokens[0]
    assert token["type"] == "strongroom" and token["keyslots"] == ["0"]
    assert token["key_id"] == world.a.key_arn and token["version"] == 2
    assert token["context"] == {
        "strongroom:tenant": world.a.credentials.account_id,
        "strongroom:volume": header.uuid,
    }
    # the keyslot PBKDF is the minimal one: the passphrase is a 256-bit random key
    slot = header.metadata["keyslots"]["0"]["kdf"]
    assert slot["type"] == "pbkdf2" and slot["iterations"] == 1000
    passphrase = cli("volume", "pass", str(image)).stdout
    assert len(passphrase) == 43 and b"\n" not in passphrase
    # cryptsetup opens keyslot 0 with it; the KMS holds the same 32 bytes under the context
    key = volume_key(image, passphrase)
    unwrapped = world.a.kms.decrypt(
        CiphertextBlob=base64.b64decode(token["wrapped_key"]),
        EncryptionContext=token["context"],
    )["Plaintext"]
    assert base64.urlsafe_b64encode(unwrapped).rstrip(b"=") == passphrase
    assert volume_key(image, passphrase) == key
    run(
        ["cryptsetup", "open", "--test-passphrase", "--key-file", "-", str(image)],
        stdin=passphrase,
    )


def test_format_with_context_and_json(cli: Cli, world: VolumeWorld, tmp_path: Path) -> None:
    image = tmp_path / "ctx.img"
    out = cli(
        "volume",
        "format",
        str(image),
        "--size",
        "32M",
        "-k",
        world.a.key_arn,
        "-c",
        "pvc=redis-0",
        "-c",
        "namespace=acme",
        "--json",
    )
    shown = json.loads(out.stdout)
    assert shown["EncryptionContext"]["pvc"] == "redis-0"
    assert shown["EncryptionContext"]["strongroom:volume"] == read_header(image).uuid
    assert "wrapped" not in out.stdout.decode().lower()
    cli("volume", "pass", str(image))


def test_bind_adds_a_keyslot_that_reaches_the_same_volume_key(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = luks_image(tmp_path / "old.img", b"correct horse")
    before = volume_key(image, b"correct horse")
    out = cli(
        "volume",
        "bind",
        str(image),
        "--key",
        world.a.key_arn,
        "--key-file",
        "-",
        "--json",
        stdin=b"correct horse",
    )
    shown = json.loads(out.stdout)
    assert shown["Keyslot"] == 1
    passphrase = cli("volume", "pass", str(image)).stdout
    assert volume_key(image, passphrase) == before
    # the old passphrase still works: bind adds, it never replaces
    assert volume_key(image, b"correct horse") == before


def test_bind_with_a_wrong_passphrase_changes_nothing(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = luks_image(tmp_path / "old.img", b"right")
    (tmp_path / "wrong.key").write_bytes(b"wrong")
    before = digest(image)
    out = cli(
        "volume",
        "bind",
        str(image),
        "-k",
        world.a.key_arn,
        "--key-file",
        str(tmp_path / "wrong.key"),
        expect=1,
    )
    assert b"No key available with this passphrase" in out.stderr
    assert digest(image) == before


def test_rewrap_after_rotation_keeps_the_keyslot_and_changes_the_blob(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    key = world.new_key(world.a)
    image = tmp_path / "rot.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", key)
    passphrase = cli("volume", "pass", str(image)).stdout
    master = volume_key(image, passphrase)
    old_token = token_of(image)
    slot_before = read_header(image).metadata["keyslots"]["0"]
    world.a.kms.rotate_key_on_demand(KeyId=key)
    out = cli("volume", "rewrap", str(image), "--json")
    assert json.loads(out.stdout)["KeyId"] == key
    new_token = token_of(image)
    assert new_token["wrapped_key"] != old_token["wrapped_key"]
    assert new_token["context"] == old_token["context"]
    assert read_header(image).metadata["keyslots"]["0"] == slot_before
    assert cli("volume", "pass", str(image)).stdout == passphrase
    assert volume_key(image, passphrase) == master


def test_rewrap_to_another_key_then_the_old_key_is_not_needed(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    first, second = world.new_key(world.a), world.new_key(world.a)
    image = tmp_path / "move.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", first)
    passphrase = cli("volume", "pass", str(image)).stdout
    cli("volume", "rewrap", str(image), "--key", second)
    assert token_of(image)["key_id"] == second
    world.a.kms.disable_key(KeyId=first)
    assert cli("volume", "pass", str(image)).stdout == passphrase


def test_bad_devices_get_clear_errors_and_stay_unchanged(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.img"
    plain.write_bytes(os.urandom(1 << 20))
    luks1 = luks_image(tmp_path / "luks1.img", b"pw", luks_type="luks1")
    foreign = luks_image(tmp_path / "foreign.img", b"pw")
    run(
        ["cryptsetup", "token", "import", "--json-file", "-", str(foreign)],
        stdin=b'{"type":"clevis","keyslots":["0"],"jwe":{}}',
    )
    cases = {
        plain: "not a LUKS device",
        luks1: "a LUKS1 device",
        foreign: "no Strongroom token on this LUKS2 device (other tokens: 0: clevis)",
    }
    for device, message in cases.items():
        before = digest(device)
        for command in (["pass"], ["status", "--check"], ["rewrap"], ["shred", "--yes"]):
            if command[0] == "status" and device == foreign:
                continue
            out = cli("volume", command[0], str(device), *command[1:], expect=1)
            assert message in out.stderr.decode(), (command, out.stderr)
        if device != foreign:  # binding a LUKS2 volume with a clevis token is fine
            out = cli(
                "volume",
                "bind",
                str(device),
                "-k",
                world.a.key_arn,
                "--key-file",
                "-",
                stdin=b"pw",
                expect=1,
            )
            assert message in out.stderr.decode()
        assert digest(device) == before, (device, command)
    # format refuses what holds data unless --force
    before = digest(luks1)
    out = cli("volume", "format", str(luks1), "-k", world.a.key_arn, expect=1)
    assert b"is a LUKS device already" in out.stderr and digest(luks1) == before
    missing = tmp_path / "missing.img"
    out = cli("volume", "format", str(missing), "-k", world.a.key_arn, expect=1)
    assert b"give --size" in out.stderr and not missing.exists()


def test_a_foreign_strongroom_token_of_an_unknown_version_is_refused(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = luks_image(tmp_path / "v9.img", b"pw")
    token = {
        "type": "strongroom",
        "keyslots": ["0"],
        "version": 9,
        "key_id": world.a.key_arn,
        "wrapped_key": "AAAA",
        "context": {},
    }
    run(
        ["cryptsetup", "token", "import", "--json-file", "-", str(image)],
        stdin=json.dumps(token).encode(),
    )
    before = digest(image)
    out = cli("volume", "pass", str(image), expect=1)
    assert b"token 0 is malformed: version 9 is not 1 or 2" in out.stderr
    assert digest(image) == before


def test_a_token_copied_from_another_volume_is_refused(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    source = tmp_path / "source.img"
    cli("volume", "format", str(source), "--size", "32M", "-k", world.a.key_arn)
    target = luks_image(tmp_path / "target.img", b"pw")
    copied = dict(token_of(source))
    run(
        ["cryptsetup", "token", "import", "--json-file", "-", str(target)],
        stdin=json.dumps(copied).encode(),
    )
    before = digest(target)
    out = cli("volume", "pass", str(target), expect=1)
    assert b"belongs to volume" in out.stderr and b"not to this one" in out.stderr
    assert digest(target) == before


def test_wrong_tenant_and_disabled_key_are_clear_errors(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    key = world.new_key(world.a)
    image = tmp_path / "a.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", key)
    before = digest(image)
    out = cli("volume", "pass", str(image), tenant=world.b, expect=1)
    text = out.stderr.decode()
    assert f"tenant {world.a.credentials.account_id}" in text and key in text
    out = cli("volume", "rewrap", str(image), tenant=world.b, expect=1)
    world.a.kms.disable_key(KeyId=key)
    out = cli("volume", "pass", str(image), expect=1)
    assert b"disabled" in out.stderr.lower()
    out = cli("volume", "rewrap", str(image), expect=1)
    assert b"is Disabled, not Enabled" in out.stderr
    out = cli("volume", "format", str(tmp_path / "new.img"), "--size", "32M", "-k", key, expect=1)
    assert b"is Disabled, not Enabled" in out.stderr
    assert not (tmp_path / "new.img").exists()
    assert digest(image) == before


def test_unlock_without_device_mapper_says_so_before_asking_the_kms(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    if device_mapper_available():
        pytest.skip("device-mapper is available here: test_unlock_maps_the_volume runs instead")
    image = tmp_path / "u.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    out = cli("volume", "unlock", str(image), "vol-u", expect=1)
    assert b"device-mapper is not available here" in out.stderr


@pytest.mark.skipif(
    not device_mapper_available(),
    reason="device-mapper is not available here (/dev/mapper/control missing or without "
    "its kernel driver): cryptsetup open cannot map volumes",
)
def test_unlock_maps_the_volume(cli: Cli, world: VolumeWorld, tmp_path: Path) -> None:
    image = tmp_path / "m.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    loop = run(["losetup", "--find", "--show", str(image)]).stdout.decode().strip()
    name = f"strongroom-test-{os.getpid()}"
    try:
        cli("volume", "unlock", loop, name)
        assert Path(f"/dev/mapper/{name}").exists()
        run(["cryptsetup", "close", name])
        cli("volume", "unlock", loop, name, "--read-only")
        run(["cryptsetup", "close", name])
    finally:
        run(["losetup", "-d", loop])


def test_help_of_every_volume_command(cli: Cli) -> None:
    for command in ("format", "unlock", "pass", "bind", "rewrap", "shred", "status"):
        out = cli("volume", command, "--help")
        assert b"Example" in out.stdout, command


def test_bind_takes_the_lowest_free_token_id_and_keyslot(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = luks_image(tmp_path / "gaps.img", b"pw")
    for token_id in ("0", "2"):
        run(
            [
                "cryptsetup",
                "token",
                "import",
                "--token-id",
                token_id,
                "--json-file",
                "-",
                str(image),
            ],
            stdin=b'{"type":"other","keyslots":["0"]}',
        )
    out = cli(
        "volume",
        "bind",
        str(image),
        "-k",
        world.a.key_arn,
        "--key-file",
        "-",
        "--json",
        stdin=b"pw",
    )
    shown = json.loads(out.stdout)
    assert (shown["TokenId"], shown["Keyslot"]) == (1, 1)
    header = read_header(image)
    assert header.tokens[1]["type"] == "strongroom" and header.tokens[1]["keyslots"] == ["1"]
    assert cli("volume", "pass", str(image), "--token-id", "1").stdout
    out = cli("volume", "pass", str(image), "--token-id", "2", expect=1)
    assert b"token 2 is a 'other' token" in out.stderr
