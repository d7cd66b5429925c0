"""The whole operator flow through the real console script, against real data directories."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.cli.context import open_service
from strongroom.kms import KeyService

if TYPE_CHECKING:
    from tests.cli.conftest import Runner

    from strongroom.testing.softhsm import TempSoftHSM


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _encrypt_some(service: KeyService, access_key_id: str) -> list[tuple[str, bytes, bytes]]:
    access = service.lookup_access_key(access_key_id)
    assert access is not None
    caller = access.caller
    out = []
    for i in range(3):
        key_id = service.call(caller, "CreateKey", {"Description": f"k{i}"})["KeyMetadata"]["KeyId"]
        for j in range(2):
            plaintext = f"secret {i}/{j}".encode()
            blob = service.call(caller, "Encrypt", {"KeyId": key_id, "Plaintext": plaintext})
            out.append((key_id, blob["CiphertextBlob"], plaintext))
        service.call(caller, "RotateKeyOnDemand", {"KeyId": key_id})
    return out


def _decrypts(data_dir: Path, access_key_id: str, items: list[tuple[str, bytes, bytes]]) -> None:
    service = open_service(data_dir)
    try:
        access = service.lookup_access_key(access_key_id)
        assert access is not None
        for key_id, blob, plaintext in items:
            got = service.call(access.caller, "Decrypt", {"CiphertextBlob": blob})
            assert got["Plaintext"] == plaintext
            assert got["KeyId"].endswith(key_id)
    finally:
        service.close()


def test_operator_flow(cli: Runner, tmp_path: Path) -> None:
    data = tmp_path / "data"
    init = cli("init", "--data-dir", str(data), "--json").json()
    assert init["DataDir"] == str(data)
    assert _mode(data) == 0o700
    assert _mode(data / "master.key") == 0o600
    assert _mode(data / "config.json") == 0o600
    assert _mode(data / "strongroom.db") == 0o600
    config = json.loads((data / "config.json").read_text())
    assert config["store_url"] == f"sqlite:///{data}/strongroom.db"
    assert config["root_of_trust"] == "local"

    env = {"STRONGROOM_DATA_DIR": str(data)}
    tenant = cli("admin", "tenant", "create", "acme", "--json", env=env).json()
    assert tenant["Name"] == "acme" and len(tenant["AccountId"]) == 12
    cli("admin", "tenant", "create", "beta", "--account-id", "111122223333", env=env)
    listed = cli("admin", "tenant", "list", "--json", env=env).json()["Tenants"]
    assert {(t["AccountId"], t["Name"]) for t in listed} == {
        (tenant["AccountId"], "acme"),
        ("111122223333", "beta"),
    }

    key = cli(
        "admin", "access-key", "create", "--tenant", "acme", "--user", "app", "--json", env=env
    ).json()
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) >= 40
    assert key["AccountId"] == tenant["AccountId"]
    assert key["Arn"] == f"arn:aws:iam::{tenant['AccountId']}:user/app"
    listed_keys = cli(
        "admin", "access-key", "list", "--tenant", tenant["AccountId"], "--json", env=env
    ).json()["AccessKeys"]
    assert [k["AccessKeyId"] for k in listed_keys] == [key["AccessKeyId"]]

    service = open_service(data)
    try:
        items = _encrypt_some(service, key["AccessKeyId"])
    finally:
        service.close()  # flushes the audit buffer
    _decrypts(data, key["AccessKeyId"], items)

    # The secret was printed once: not in any listing, the audit log or the store file.
    shown = cli("admin", "audit", "show", "--limit", "1000", "--json", env=env).out
    assert key["SecretAccessKey"] not in shown
    assert key["SecretAccessKey"] not in json.dumps(listed_keys)
    assert key["SecretAccessKey"].encode() not in (data / "strongroom.db").read_bytes()
    events = json.loads(shown)["Events"]
    operations = [e["Event"]["operation"] for e in events]
    assert operations[:3] == ["CreateTenant", "CreateTenant", "CreateAccessKey"]
    assert operations.count("Encrypt") == 6 and operations.count("Decrypt") == 6
    page = cli("admin", "audit", "show", "--since", "2", "--limit", "3", "--json", env=env).json()
    assert [e["Seq"] for e in page["Events"]] == [3, 4, 5]
    # Searches: the event of one request id (GetKeyLastUsage's KmsRequestId), a key's events
    decrypt = next(e for e in events if e["Event"]["operation"] == "Decrypt")["Event"]
    found = cli(
        "admin", "audit", "show", "--request-id", decrypt["requestId"], "--json", env=env
    ).json()["Events"]
    assert [e["Event"] for e in found] == [decrypt]
    key_id = decrypt["keyArn"].rsplit("/", 1)[1]
    for ref in (key_id, decrypt["keyArn"]):
        of_key = cli(
            "admin", "audit", "show", "--key", ref, "--operation", "Decrypt", "--json", env=env
        ).json()["Events"]
        assert of_key and all(e["Event"]["keyArn"] == decrypt["keyArn"] for e in of_key)
        assert {e["Event"]["operation"] for e in of_key} == {"Decrypt"}
    first = cli(
        "admin",
        "audit",
        "show",
        "--account",
        tenant["AccountId"],
        "--limit",
        "1",
        "--json",
        env=env,
    ).json()["Events"]
    assert len(first) == 1 and first[0]["Event"]["account"] == tenant["AccountId"]
    nothing = cli("admin", "audit", "show", "--request-id", "no-such-request", env=env).out
    assert "0 audit event(s)" in nothing

    verify = cli("admin", "audit", "verify", env=env)
    assert f"{len(events)} events, chain intact" in verify.out
    verified = cli("admin", "audit", "verify", "--json", env=env).json()
    assert verified["Intact"] is True and verified["Events"] == len(events)

    # Backup, then restore into a fresh data directory holding a copy of master.key.
    backup = tmp_path / "keystore.srkb"
    made = cli("admin", "backup-keystore", "--out", str(backup), "--json", env=env).json()
    # 2 tenants + 2 name index rows + 1 principal + 1 access key index + 3 keys + 6 versions
    # + 2 tracking starts and 3 last uses (GetKeyLastUsage) + the wrapped audit key
    assert made["Records"] == 21 and made["AuditEvents"] == len(events)
    assert _mode(backup) == 0o600
    assert key["SecretAccessKey"].encode() not in backup.read_bytes()
    assert b"acme" not in backup.read_bytes()  # metadata is encrypted too
    assert cli("admin", "backup-keystore", "--out", str(backup), env=env, expect=1).err.startswith(
        "error: "
    )
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy2(data / "master.key", fresh / "master.key")
    restored = cli(
        "admin", "restore-keystore", "--in", str(backup), "--data-dir", str(fresh), "--json"
    ).json()
    assert restored["Records"] == made["Records"]
    assert restored["AuditEvents"] == made["AuditEvents"]
    _decrypts(fresh, key["AccessKeyId"], items)
    again = cli("admin", "audit", "verify", "--json", "--data-dir", str(fresh)).json()
    assert again["Intact"] is True
    restored_events = cli(
        "admin", "audit", "show", "--json", "--limit", "1000", "--data-dir", str(fresh)
    ).json()["Events"]
    original = [e["Hash"] for e in events]
    assert [e["Hash"] for e in restored_events[: len(original)]] == original  # same chain
    assert restored_events[len(original)]["Event"]["operation"] == "RestoreKeystore"
    after_backup = cli(
        "admin", "audit", "show", "--json", "--since", str(len(events)), env=env
    ).json()["Events"]
    assert after_backup[0]["Event"]["operation"] == "BackupKeystore"
    assert after_backup[0]["Event"]["backupId"] == made["BackupId"]

    # Restoring into a store that holds data is refused.
    refused = cli(
        "admin", "restore-keystore", "--in", str(backup), "--data-dir", str(fresh), expect=1
    )
    assert "not empty" in refused.err

    # Tamper with one audit row: verify names the event and fails; so does a backup.
    with sqlite3.connect(data / "strongroom.db") as db:
        db.execute(
            "UPDATE audit SET body = CAST(REPLACE(CAST(body AS TEXT), 'Success', 'Failure') "
            "AS BLOB) WHERE seq = 4"
        )
    broken = cli("admin", "audit", "verify", env=env, expect=1)
    reason = "its content does not match its keyed hash (edited in the store)"
    assert broken.err == f"error: audit chain broken at event 4 (rewritten): {reason}\n"
    as_json = cli("admin", "audit", "verify", "--json", env=env, expect=1).json()
    assert as_json == {"Intact": False, "BrokenAt": 4, "Kind": "rewritten", "Reason": reason}
    refused_backup = cli(
        "admin", "backup-keystore", "--out", str(tmp_path / "b2"), env=env, expect=1
    )
    assert "broken at event 4" in refused_backup.err
    assert not (tmp_path / "b2").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_restore_under_another_root_fails_cleanly(cli: Runner, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("init", "--data-dir", str(data))
    cli("admin", "tenant", "create", "acme", "--data-dir", str(data))
    backup = tmp_path / "b.srkb"
    cli("admin", "backup-keystore", "--out", str(backup), "--data-dir", str(data))

    other = tmp_path / "other"
    cli("init", "--data-dir", str(other))  # its own, different master key
    (other / "config.json").unlink()
    (other / "strongroom.db").unlink()
    (other / "store-mac.json").unlink()  # what the data directory knew of that store
    failed = cli(
        "admin", "restore-keystore", "--in", str(backup), "--data-dir", str(other), expect=1
    )
    assert "not made under this root of trust" in failed.err
    assert sorted(p.name for p in other.iterdir()) == ["master.key"]  # nothing set up

    missing = cli(
        "admin",
        "restore-keystore",
        "--in",
        str(backup),
        "--data-dir",
        str(tmp_path / "empty"),
        expect=1,
    )
    assert "copy the master.key" in missing.err
    assert not (tmp_path / "empty").exists()

    # An initialised, empty data directory with another root: refused, store stays empty.
    third = tmp_path / "third"
    cli("init", "--data-dir", str(third))
    cli("admin", "restore-keystore", "--in", str(backup), "--data-dir", str(third), expect=1)
    assert cli("admin", "tenant", "list", "--json", "--data-dir", str(third)).json() == {
        "Tenants": []
    }

    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"hello, not a backup")
    shutil.copy2(data / "master.key", tmp_path / "fourth-key")
    fourth = tmp_path / "fourth"
    fourth.mkdir()
    shutil.copy2(data / "master.key", fourth / "master.key")
    bad = cli(
        "admin", "restore-keystore", "--in", str(garbage), "--data-dir", str(fourth), expect=1
    )
    assert bad.err == "error: this file is not a Strongroom keystore backup\n"


def test_init_refuses_a_data_dir_in_use_and_defaults(cli: Runner, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("init", env={"STRONGROOM_DATA_DIR": str(data)})
    assert (data / "config.json").exists()
    again = cli("init", "--data-dir", str(data), expect=1)
    assert again.err.startswith("error: ") and again.err.count("\n") == 1
    assert "refusing to initialise it again" in again.err
    assert again.out == ""

    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("mine")
    assert "not empty" in cli("init", "--data-dir", str(tmp_path / "stray"), expect=1).err
    assert sorted(p.name for p in (tmp_path / "stray").iterdir()) == ["notes.txt"]

    work = tmp_path / "work"
    work.mkdir()
    out = cli("init", cwd=work)
    assert (work / ".strongroom" / "config.json").exists()
    assert "master key" in out.out
    created = cli("admin", "tenant", "create", "here", "--json", cwd=work).json()
    assert (
        cli("admin", "tenant", "list", "--json", cwd=work).json()["Tenants"][0]["AccountId"]
        == created["AccountId"]
    )


def test_errors_are_one_line(cli: Runner, tmp_path: Path) -> None:
    missing = cli("admin", "tenant", "list", "--data-dir", str(tmp_path / "nope"), expect=1)
    assert missing.err.count("\n") == 1 and "strongroom init" in missing.err
    data = tmp_path / "data"
    cli("init", "--data-dir", str(data))
    for args in (
        ("admin", "access-key", "create", "--tenant", "nobody"),
        ("admin", "access-key", "delete", "AKIAAAAAAAAAAAAAAAAA"),
        ("admin", "tenant", "create", "x", "--account-id", "12"),
    ):
        result = cli(*args, "--data-dir", str(data), expect=1)
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result
    cli("admin", "tenant", "create", "dup", "--data-dir", str(data))
    dup = cli("admin", "tenant", "create", "dup", "--data-dir", str(data), expect=1)
    assert dup.err == "error: Tenant dup already exists.\n"


def test_access_key_delete(cli: Runner, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("init", "--data-dir", str(data))
    cli("admin", "tenant", "create", "acme", "--data-dir", str(data))
    made = cli(
        "admin", "access-key", "create", "--tenant", "acme", "--json", "--data-dir", str(data)
    ).json()
    cli("admin", "access-key", "delete", made["AccessKeyId"], "--data-dir", str(data))
    left = cli(
        "admin", "access-key", "list", "--tenant", "acme", "--json", "--data-dir", str(data)
    ).json()
    assert left == {"AccessKeys": []}
    service = open_service(data)
    try:
        assert service.lookup_access_key(made["AccessKeyId"]) is None
    finally:
        service.close()


def test_every_command_has_help_with_an_example() -> None:
    from typer.testing import CliRunner

    from strongroom.cli.main import build_app

    app, runner = build_app(), CliRunner()
    commands = [
        ("init",),
        ("admin", "tenant", "create"),
        ("admin", "tenant", "list"),
        ("admin", "access-key", "create"),
        ("admin", "access-key", "list"),
        ("admin", "access-key", "delete"),
        ("admin", "audit", "verify"),
        ("admin", "audit", "show"),
        ("admin", "backup-keystore"),
        ("admin", "restore-keystore"),
    ]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, command
        text = " ".join(result.output.split())
        assert "Example" in text, command
        assert f"strongroom {' '.join(command)}" in text, command
        assert "--data-dir" in text, command
    top = runner.invoke(app, ["--help"]).output
    assert "init" in top and "admin" in top


def test_every_command_and_group_in_the_tree_shows_an_example() -> None:
    import typer
    from typer.testing import CliRunner

    from strongroom.cli.main import build_app

    app, runner = build_app(), CliRunner()

    def walk(command: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = [path]
        if hasattr(command, "list_commands"):  # a group (the top one loads commands lazily)
            for name in command.list_commands(None):
                found += walk(command.get_command(None, name), (*path, name))
        return found

    paths = walk(typer.main.get_command(app), ())
    assert ("server",) in paths and ("admin", "audit") in paths
    assert ("mesh", "agent") in paths and ("mesh", "proxy") in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, path
        text = " ".join(result.output.split())
        assert "Example" in text and "strongroom " in text.split("Example", 1)[1], path


def test_init_with_an_hsm_root(cli: Runner, tmp_path: Path, softhsm_token: TempSoftHSM) -> None:
    uri = softhsm_token.uri("cli-root")
    data = tmp_path / "data"
    made = cli(
        "init",
        "--data-dir",
        str(data),
        "--root-of-trust",
        uri,
        "--json",
        env={"SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"]},
    ).json()
    assert made["MasterKeyFile"] is None
    assert softhsm_token.pin not in made["RootOfTrust"]  # the PIN is never printed
    assert not (data / "master.key").exists()
    cli("admin", "tenant", "create", "acme", "--data-dir", str(data))
    backup = tmp_path / "b.srkb"
    cli("admin", "backup-keystore", "--out", str(backup), "--data-dir", str(data))
    fresh = tmp_path / "fresh"
    cli(
        "admin",
        "restore-keystore",
        "--in",
        str(backup),
        "--data-dir",
        str(fresh),
        "--root-of-trust",
        uri,
    )
    listed = cli("admin", "tenant", "list", "--json", "--data-dir", str(fresh)).json()
    assert [t["Name"] for t in listed["Tenants"]] == ["acme"]
