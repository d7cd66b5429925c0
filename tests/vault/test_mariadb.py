"""MariaDB from Debian with InnoDB encryption, keys from Strongroom's Vault API over HTTPS.

The hashicorp_key_management plugin (MariaDB's own code) reads key 1 from the KV v2 mount:
no canary in plaintext in .ibd or redo files; a rotation is picked up and the tablespace
re-encrypted under the new version; a revoked token or a disabled KMS key leaves the
encrypted tables unreadable after a restart, and re-enabling brings them back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.testing import mariadb
from strongroom.testing.vault import VaultServerInfo, vault_server
from strongroom.vault import records

pytestmark = pytest.mark.skipif(not mariadb.available(), reason="mariadb-server not installed")

CANARY = "CANARY-7f3e9b1c-strongroom"
PLAIN_CANARY = "PLAIN-CANARY-2b8d4e6a"


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServerInfo]:
    with vault_server(tmp_path_factory.mktemp("vault")) as info:
        info.front.kv_write(info.tenant, info.caller, info.mount, "1", {"data": "11" * 32})
        yield info


@pytest.fixture(scope="module")
def db(
    vault: VaultServerInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[mariadb.TempMariaDB]:
    server = mariadb.TempMariaDB(
        tmp_path_factory.mktemp("mariadb"), f"{vault.url}/v1/{vault.mount}", vault.token, vault.ca
    )
    server.install()
    assert server.start(), server.error_log()
    yield server
    server.stop()


def _files_contain(directory: Path, needle: bytes, names: tuple[str, ...]) -> list[Path]:
    hits = []
    for path in directory.rglob("*"):
        wanted = path.suffix == ".ibd" or path.name.startswith(names)
        if wanted and path.is_file() and needle in path.read_bytes():
            hits.append(path)
    return hits


def test_canary_is_not_in_plaintext(db: mariadb.TempMariaDB) -> None:
    db.sql("CREATE DATABASE shop")
    db.sql("CREATE TABLE shop.cards (id INT PRIMARY KEY, pan VARCHAR(64)) ENCRYPTED=YES")
    db.sql("CREATE TABLE shop.open (id INT PRIMARY KEY, note VARCHAR(64)) ENCRYPTED=NO")
    db.sql(f"INSERT INTO shop.cards VALUES (1, '{CANARY}')")
    db.sql(f"INSERT INTO shop.open VALUES (1, '{PLAIN_CANARY}')")
    assert db.sql("SELECT pan FROM shop.cards").stdout.strip() == CANARY
    db.stop()  # slow shutdown: every page is on disk
    assert _files_contain(db.datadir, CANARY.encode(), ("ib_logfile", "ibdata", "ibtmp")) == []
    # the check can fail: the unencrypted table does show its canary
    assert _files_contain(db.datadir, PLAIN_CANARY.encode(), ()) != []
    assert db.start(), db.error_log()
    assert db.sql("SELECT pan FROM shop.cards").stdout.strip() == CANARY


def _key_version(db: mariadb.TempMariaDB) -> int:
    out = db.sql(
        "SELECT CURRENT_KEY_VERSION FROM information_schema.INNODB_TABLESPACES_ENCRYPTION "
        "WHERE NAME='shop/cards'"
    ).stdout.strip()
    return int(out or 0)


def test_rotation_is_picked_up(db: mariadb.TempMariaDB, vault: VaultServerInfo) -> None:
    before = _key_version(db)
    assert before == 1
    version = vault.front.kv_write(
        vault.tenant, vault.caller, vault.mount, "1", {"data": "22" * 32}
    )
    assert version == 2
    deadline = time.monotonic() + 60
    while _key_version(db) != 2:  # the encryption threads re-encrypt under the new version
        assert time.monotonic() < deadline, db.error_log()
        time.sleep(0.5)
    assert db.sql("SELECT pan FROM shop.cards").stdout.strip() == CANARY


def _restart(db: mariadb.TempMariaDB) -> bool:
    db.stop()
    return (
        db.start(timeout=30) and db.sql("SELECT pan FROM shop.cards", check=False).returncode == 0
    )


def test_disabled_kms_key_makes_tables_unreadable_until_enabled(
    db: mariadb.TempMariaDB, vault: VaultServerInfo
) -> None:
    vault.service.call(vault.caller, "DisableKey", {"KeyId": vault.kms_key})
    try:
        assert not _restart(db)  # a restart starts with an empty key cache
        assert "hashicorp" in db.error_log().lower()
    finally:
        vault.service.call(vault.caller, "EnableKey", {"KeyId": vault.kms_key})
    assert _restart(db), db.error_log()
    assert db.sql("SELECT pan FROM shop.cards").stdout.strip() == CANARY


def test_revoked_token_makes_tables_unreadable_until_a_new_token(
    db: mariadb.TempMariaDB, vault: VaultServerInfo
) -> None:
    vault.front.store.write(lambda tx: records.revoke_token(tx, vault.accessor))
    assert not _restart(db)
    assert "hashicorp" in db.error_log().lower()
    token, _ = vault.front.store.write(
        lambda tx: records.new_token(tx, vault.front.root, vault.tenant, vault.mount, "db2")
    )
    db.token = token
    assert _restart(db), db.error_log()
    assert db.sql("SELECT pan FROM shop.cards").stdout.strip() == CANARY
