"""A store written before records were sealed is sealed once, on first open, and keeps working.

``fixtures/store_v0`` is a data directory written by the previous Strongroom (made by
``fixtures/make_store_v0.py`` with that version's code): a tenant, an access key, a key
with an alias, a grant (its token secret in clear, as then) and a ciphertext.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from strongroom.config import DataDirConfig
from strongroom.deployment import open_service
from strongroom.errors import InvalidGrantTokenError, TamperedRecordError
from strongroom.ports.row_mac import ROW_FORMAT
from strongroom.store_trust import MARKER_FILE

FIXTURE = Path(__file__).parent / "fixtures" / "store_v0"


def _copy(tmp_path: Path) -> tuple[DataDirConfig, Path, dict[str, str]]:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    (data / "master.key").chmod(0o600)  # git keeps no file modes but 0755/0644
    config = DataDirConfig(store_url=str(data / "strongroom.db"), root_of_trust="local")
    facts = json.loads((data / "facts.json").read_text())
    return config, data, facts


def _rows(path: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(path) as conn:
        return [(str(k), bytes(v)) for k, v in conn.execute("SELECT kind, value FROM records")]


def test_a_store_of_the_previous_version_is_migrated_once(tmp_path: Path) -> None:
    config, data, facts = _copy(tmp_path)
    before = _rows(data / "strongroom.db")
    assert any(b"token_secret" in value for _, value in before)  # what the old version kept

    service = open_service(config, data)
    try:
        region = "us-east-1"
        access = service.lookup_access_key(facts["access_key_id"], region)
        assert access is not None
        app = access.caller
        blob = bytes.fromhex(facts["blob"])
        assert service.call(app, "Decrypt", {"CiphertextBlob": blob})["Plaintext"] == b"from v0"
        service.call(app, "Encrypt", {"KeyId": "alias/legacy", "Plaintext": b"x"})
        grants = service.call(app, "ListGrants", {"KeyId": facts["key_id"]})["Grants"]
        assert [g["GrantId"] for g in grants] == [facts["grant_id"]]
        # tokens of the old version were keyed by the secret the migration removed
        with pytest.raises(InvalidGrantTokenError):
            service.call(
                app,
                "Encrypt",
                {
                    "KeyId": facts["key_id"],
                    "Plaintext": b"x",
                    "GrantTokens": [facts["grant_token"]],
                },
            )
        token = service.call(
            app,
            "CreateGrant",
            {
                "KeyId": facts["key_id"],
                "GranteePrincipal": app.principal_arn,
                "Operations": ["Encrypt"],
            },
        )["GrantToken"]
        service.call(
            app, "Encrypt", {"KeyId": facts["key_id"], "Plaintext": b"x", "GrantTokens": [token]}
        )
    finally:
        service.close()

    after = _rows(data / "strongroom.db")
    assert len(after) >= len(before) + 1
    for kind, value in after:
        if kind != "storemac":
            assert value[0] == ROW_FORMAT, kind
        assert b"token_secret" not in value
    remembered = json.loads((data / MARKER_FILE).read_text())["stores"]
    key_id = remembered[config.store_url]

    # a second start seals nothing anew: the same key, and an edit is refused
    with sqlite3.connect(data / "strongroom.db") as conn:
        (value,) = conn.execute("SELECT value FROM records WHERE kind='tenant'").fetchone()
        edited = bytes(value).replace(b'"ACTIVE"', b'"SUSPENDED"')
        conn.execute("UPDATE records SET value=? WHERE kind='tenant'", (edited,))
    service = open_service(config, data)
    try:
        with pytest.raises(TamperedRecordError):
            service.find_tenant(facts["account"])
    finally:
        service.close()
    assert json.loads((data / MARKER_FILE).read_text())["stores"][config.store_url] == key_id


def test_rows_put_back_without_their_mac_key_are_not_trusted_again(tmp_path: Path) -> None:
    config, data, _ = _copy(tmp_path)
    open_service(config, data).close()
    # the attacker restores the old, unsealed store (or deletes the MAC key row)
    shutil.copy(FIXTURE / "strongroom.db", data / "strongroom.db")
    with pytest.raises(TamperedRecordError, match="lost its metadata MAC key"):
        open_service(config, data)
