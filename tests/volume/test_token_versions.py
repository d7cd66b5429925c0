"""Version-2 tokens (a keyed check, no cryptsetup process on ``volume pass``) and version-1
tokens written before them, on LUKS2 images made by Debian's cryptsetup, against a real
server. Which processes ``strongroom`` starts is seen through ``$STRONGROOM_CRYPTSETUP``: a
wrapper that logs each call and runs the real cryptsetup."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from strongroom.errors import ValidationError
from strongroom.testing.luks import cryptsetup_missing, digest, run, volume_key
from strongroom.volume.header import Luks2Header, read_header
from strongroom.volume.recover import Bound, in_use
from strongroom.volume.token import VolumeToken, keyslot_check

if TYPE_CHECKING:
    from tests.volume.conftest import VolumeWorld

Cli = Callable[..., subprocess.CompletedProcess[bytes]]
pytestmark = pytest.mark.skipif(
    cryptsetup_missing(), reason="cryptsetup is not installed (scripts/test.sh installs it)"
)


def token_of(device: Path, token_id: int = 0) -> dict[str, Any]:
    return dict(read_header(device).tokens[token_id])


def replace_token(device: Path, token: dict[str, Any], token_id: int = 0) -> None:
    run(
        [
            "cryptsetup",
            "token",
            "import",
            "--json-file",
            "-",
            "--token-id",
            str(token_id),
            "--token-replace",
            str(device),
        ],
        stdin=json.dumps(token).encode(),
    )


def as_version_1(token: dict[str, Any]) -> dict[str, Any]:
    """What ``volume format`` wrote before version 2: no check."""
    return {**{k: v for k, v in token.items() if k != "check"}, "version": 1}


@pytest.fixture
def logged(world: VolumeWorld, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose cryptsetup logs its arguments to a file, and that file."""
    log = tmp_path / "cryptsetup.log"
    real = shutil.which("cryptsetup") or "/usr/sbin/cryptsetup"
    wrapper = tmp_path / "cryptsetup-logged"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return world.env(world.a, STRONGROOM_CRYPTSETUP=str(wrapper)), log


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_format_writes_a_version_2_token_whose_check_binds_passphrase_volume_and_keyslot(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = tmp_path / "v2.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    header = read_header(image)
    token, uuid, salt = token_of(image), header.uuid, header.keyslot_salt(0)
    assert token["version"] == 2 and salt == header.metadata["keyslots"]["0"]["kdf"]["salt"]
    passphrase = cli("volume", "pass", str(image)).stdout
    check = base64.b64decode(token["check"])
    assert check == keyslot_check(passphrase, uuid, 0, salt)
    assert check != keyslot_check(passphrase, uuid, 1, salt)
    assert check != keyslot_check(passphrase, uuid, 0, "")
    volume_key(image, passphrase)  # cryptsetup opens keyslot 0 with it


def test_pass_on_a_version_2_token_starts_no_process(
    cli: Cli, world: VolumeWorld, logged: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = logged
    image = tmp_path / "quiet.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    passphrase = cli("volume", "pass", str(image), env=env).stdout
    assert calls(log) == []
    volume_key(image, passphrase)
    # status still tests every token on its keyslot with cryptsetup
    shown = json.loads(cli("volume", "status", str(image), "--check", "--json", env=env).stdout)
    assert shown["Tokens"][0]["Unlocks"] is True
    assert [c.split()[:2] for c in calls(log)] == [["open", "--test-passphrase"]]


def test_a_version_1_token_still_works_tested_by_cryptsetup_and_rewrap_upgrades_it(
    cli: Cli, world: VolumeWorld, logged: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = logged
    image = tmp_path / "old.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    passphrase = cli("volume", "pass", str(image)).stdout
    replace_token(image, as_version_1(token_of(image)))
    assert token_of(image)["version"] == 1 and "check" not in token_of(image)
    assert cli("volume", "pass", str(image), env=env).stdout == passphrase
    assert [c.split()[:2] for c in calls(log)] == [["open", "--test-passphrase"]]
    shown = json.loads(cli("volume", "status", str(image), "--check", "--json").stdout)
    assert shown["Tokens"][0]["Unlocks"] is True and shown["Tokens"][0]["Version"] == 1
    assert b"version 1 (no check" in cli("volume", "status", str(image)).stdout
    cli("volume", "rewrap", str(image))
    token = token_of(image)
    assert token["version"] == 2
    header = read_header(image)
    expected = keyslot_check(passphrase, header.uuid, 0, header.keyslot_salt(0))
    assert base64.b64decode(token["check"]) == expected
    log.unlink()
    assert cli("volume", "pass", str(image), env=env).stdout == passphrase
    assert calls(log) == []


def test_rewrap_keeps_the_check_of_a_version_2_token(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = tmp_path / "keep.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    before = token_of(image)
    cli("volume", "rewrap", str(image), "--key", world.new_key(world.a))
    after = token_of(image)
    assert after["check"] == before["check"] and after["key_id"] != before["key_id"]


def test_an_altered_check_costs_a_cryptsetup_test_and_nothing_else(
    cli: Cli, world: VolumeWorld, logged: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = logged
    image = tmp_path / "altered.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    passphrase = cli("volume", "pass", str(image)).stdout
    replace_token(image, {**token_of(image), "check": base64.b64encode(bytes(32)).decode()})
    before = digest(image)
    assert cli("volume", "pass", str(image), env=env).stdout == passphrase
    assert [c.split()[:2] for c in calls(log)] == [["open", "--test-passphrase"]]
    assert digest(image) == before


def test_a_blob_moved_to_another_keyslot_token_is_refused_by_the_keyslot(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = tmp_path / "moved.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    first = cli("volume", "pass", str(image)).stdout
    cli("volume", "bind", str(image), "-k", world.a.key_arn, "--key-file", "-", stdin=first)
    # token 1 keeps its keyslot and check but carries keyslot 0's blob (same volume context)
    moved = {**token_of(image, 1), "wrapped_key": token_of(image)["wrapped_key"]}
    replace_token(image, moved, 1)
    out = cli("volume", "pass", str(image), "--token-id", "1", expect=1)
    assert b"token 1" in out.stderr and b"No key available with this passphrase" in out.stderr
    assert first not in out.stdout + out.stderr


def test_a_keyslot_changed_behind_strongroom_is_caught_and_the_next_token_used(
    cli: Cli, world: VolumeWorld, logged: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = logged
    image = tmp_path / "changed.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    first = cli("volume", "pass", str(image)).stdout
    cli("volume", "bind", str(image), "-k", world.a.key_arn, "--key-file", "-", stdin=first)
    second = cli("volume", "pass", str(image), "--token-id", "1").stdout
    (tmp_path / "old.key").write_bytes(first)
    (tmp_path / "new.key").write_bytes(b"chosen by a person")
    # luksChangeKey rewrites keyslot 0 (a new salt) and leaves token 0 assigned to it
    run(
        [
            "cryptsetup",
            "luksChangeKey",
            "--batch-mode",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-slot",
            "0",
            "--key-file",
            str(tmp_path / "old.key"),
            str(image),
            str(tmp_path / "new.key"),
        ]
    )
    assert read_header(image).tokens[0]["keyslots"] == ["0"]
    out = cli("volume", "pass", str(image), "--token-id", "0", env=env, expect=1)
    assert b"token 0" in out.stderr and b"No key available with this passphrase" in out.stderr
    assert [c.split()[:2] for c in calls(log)] == [["open", "--test-passphrase"]]
    assert cli("volume", "pass", str(image)).stdout == second  # token 1 is next in order
    shown = json.loads(cli("volume", "status", str(image), "--check", "--json").stdout)
    assert [t["Unlocks"] for t in shown["Tokens"]] == [False, True]


def test_a_keyslot_rewritten_with_the_same_passphrase_is_tested_until_rewrap(
    cli: Cli, world: VolumeWorld, logged: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = logged
    image = tmp_path / "converted.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    passphrase = cli("volume", "pass", str(image)).stdout
    salt = read_header(image).keyslot_salt(0)
    run(
        [
            "cryptsetup",
            "luksConvertKey",
            "--batch-mode",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1001",
            "--key-slot",
            "0",
            "--key-file",
            "-",
            str(image),
        ],
        stdin=passphrase,
    )
    assert read_header(image).keyslot_salt(0) != salt
    assert cli("volume", "pass", str(image), env=env).stdout == passphrase
    assert [c.split()[:2] for c in calls(log)] == [["open", "--test-passphrase"]]
    cli("volume", "rewrap", str(image))  # a check made for the keyslot as it is now
    log.unlink()
    assert cli("volume", "pass", str(image), env=env).stdout == passphrase
    assert calls(log) == []


def test_a_token_naming_a_keyslot_the_volume_lacks_is_refused() -> None:
    # cryptsetup refuses to import such a token; a header edited by hand can still hold one
    arn = "arn:aws:kms:eu-west-1:111122223333:key/k"
    context = {"strongroom:tenant": "111122223333", "strongroom:volume": "u"}
    token = VolumeToken(5, arn, b"blob", context, bytes(32))
    header = Luks2Header("u", 1, 16384, {"keyslots": {"0": {}}, "tokens": {}})
    with pytest.raises(ValidationError, match="token 2 names keyslot 5, which this volume"):
        in_use(header, "/dev/x", Bound(2, token))
    assert in_use(header, "/dev/x", Bound(2, VolumeToken(0, arn, b"b", context))).token_id == 2
