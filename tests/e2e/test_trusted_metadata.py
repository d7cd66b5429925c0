"""Trusted metadata: rows edited directly in the database are refused by the server, not obeyed.

A real ``strongroom server`` (SQLite) is set up through boto3, stopped, and its database
edited with ``sqlite3`` the way an attacker with write access to the database alone would:
a key policy opened to everyone, a principal made admin, a grant handed to another
grantee, an alias re-pointed, a disabled key enabled, two rows swapped. Started again, the
server answers every call that reads such a row with ``KMSInternalException`` and never
does what the edit asked. Grant tokens still work for untouched grants, and no grant
token secret is in the database.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from strongroom.testing.e2e_server import add_access_key, add_tenant, start_server
from strongroom.testing.http import kms_client

REGION = "eu-west-1"
TAG_BYTES = 1 + 32  # version byte and MAC in front of every sealed row


def _edit(
    db: Path, tenant: str, kind: str, name: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Rewrite one row's JSON in place, keeping its MAC (what a DB-only attacker can do)."""
    with sqlite3.connect(db) as conn:
        (value,) = conn.execute(
            "SELECT value FROM records WHERE tenant=? AND kind=? AND name=?", (tenant, kind, name)
        ).fetchone()
        head, body = bytes(value[:TAG_BYTES]), json.loads(bytes(value[TAG_BYTES:]))
        change(body)
        conn.execute(
            "UPDATE records SET value=? WHERE tenant=? AND kind=? AND name=?",
            (head + json.dumps(body).encode(), tenant, kind, name),
        )


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def _only(arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "kms:*", "Resource": "*"}
            ],
        }
    )


def test_rows_edited_in_sqlite_are_refused_by_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with start_server(data) as server:
        app = add_tenant(data, "victim", user="app")
        account = app.account_id
        boss = add_access_key(data, account, "boss", is_admin=True)
        mallory = add_access_key(data, account, "mallory")
        as_boss = kms_client(server.endpoint, boss, REGION)
        as_app = kms_client(server.endpoint, app, REGION)
        as_mallory = kms_client(server.endpoint, mallory, REGION)
        boss_arn = f"arn:aws:iam::{account}:user/boss"
        made = {}
        for name in ("policy", "granted", "aliased", "disabled", "swap_a", "swap_b", "open"):
            made[name] = as_boss.create_key(Policy=_only(boss_arn))["KeyMetadata"]["KeyId"]
        as_boss.put_key_policy(KeyId=made["open"], PolicyName="default", Policy=_only("*"))
        grant = as_boss.create_grant(
            KeyId=made["granted"],
            GranteePrincipal=boss_arn,
            Operations=["Encrypt", "Decrypt"],
        )
        as_boss.create_alias(AliasName="alias/app-key", TargetKeyId=made["open"])
        as_boss.disable_key(KeyId=made["disabled"])
        # before: app is refused everywhere but the open key
        assert _code(lambda: as_app.encrypt(KeyId=made["policy"], Plaintext=b"x")) == (
            "AccessDeniedException"
        )
        blob = as_app.encrypt(KeyId="alias/app-key", Plaintext=b"x")["CiphertextBlob"]
        token_blob = as_boss.encrypt(
            KeyId=made["granted"], Plaintext=b"t", GrantTokens=[grant["GrantToken"]]
        )["CiphertextBlob"]
        assert as_boss.decrypt(CiphertextBlob=token_blob)["Plaintext"] == b"t"
        assert as_mallory.list_keys()["Keys"]
        for client in (as_boss, as_app, as_mallory):
            client.close()

    db = data / "strongroom.db"
    with sqlite3.connect(db) as conn:
        raw = b"".join(bytes(v) for (v,) in conn.execute("SELECT value FROM records"))
    token_mac_key_in_clear = base64.b64encode(b"token_secret")
    assert b"token_secret" not in raw and token_mac_key_in_clear not in raw
    # the attacks
    _edit(db, account, "key", made["policy"], lambda r: r.update(policy=_only("*")))
    _edit(db, account, "principal", mallory.access_key_id, lambda r: r.update(is_admin=True))
    grant_row = f"{made['granted']}/{grant['GrantId']}"
    _edit(db, account, "grant", grant_row, lambda r: r.update(grantee_principal="*"))
    _edit(
        db, account, "alias", f"{REGION}/alias/app-key", lambda r: r.update(key_id=made["policy"])
    )
    _edit(db, account, "key", made["disabled"], lambda r: r.update(key_state="Enabled"))
    with sqlite3.connect(db) as conn:  # two keys' whole rows swapped: the MACs move along
        rows = {
            name: bytes(value)
            for name, value in conn.execute(
                "SELECT name, value FROM records WHERE tenant=? AND kind='key' AND name IN (?, ?)",
                (account, made["swap_a"], made["swap_b"]),
            )
        }
        for name, other in ((made["swap_a"], made["swap_b"]), (made["swap_b"], made["swap_a"])):
            conn.execute(
                "UPDATE records SET value=? WHERE tenant=? AND kind='key' AND name=?",
                (rows[other], account, name),
            )

    with start_server(data) as server:
        as_app = kms_client(server.endpoint, app, REGION)
        as_boss = kms_client(server.endpoint, boss, REGION)
        as_mallory = kms_client(server.endpoint, mallory, REGION)
        internal = "KMSInternalException"
        # policy opened to everyone: refused, not obeyed
        assert _code(lambda: as_app.encrypt(KeyId=made["policy"], Plaintext=b"x")) == internal
        # is_admin flipped: the principal is refused altogether
        assert _code(lambda: as_mallory.list_keys()) == internal
        # grantee changed: the grant (and so its key's grant checks) refused
        assert (
            _code(lambda: as_app.encrypt(KeyId=made["granted"], Plaintext=b"x", GrantTokens=[]))
            == internal
        )
        # alias re-pointed at the locked key: refused (not an encryption under it)
        assert _code(lambda: as_app.encrypt(KeyId="alias/app-key", Plaintext=b"x")) == internal
        # disabled key enabled in the database: still unusable
        assert _code(lambda: as_boss.encrypt(KeyId=made["disabled"], Plaintext=b"x")) == internal
        # swapped rows do not verify under each other's names
        for name in ("swap_a", "swap_b"):
            assert _code(lambda n=name: as_boss.describe_key(KeyId=made[n])) == internal  # type: ignore[misc]
        # what was not touched works as before
        assert as_app.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
        assert as_boss.encrypt(KeyId=made["open"], Plaintext=b"y")["KeyId"].endswith(made["open"])
        for client in (as_boss, as_app, as_mallory):
            client.close()


def test_a_deleted_row_only_denies_and_the_mac_key_cannot_be_dropped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with start_server(data) as server:
        app = add_tenant(data, "victim", user="app")
        as_app = kms_client(server.endpoint, app, REGION)
        key = as_app.create_key()["KeyMetadata"]["KeyId"]
        token = as_app.create_grant(
            KeyId=key,
            GranteePrincipal=f"arn:aws:iam::{app.account_id}:user/app",
            Operations=["Encrypt"],
        )["GrantToken"]
        as_app.encrypt(KeyId=key, Plaintext=b"x", GrantTokens=[token])
        as_app.close()
    with sqlite3.connect(data / "strongroom.db") as conn:
        conn.execute("DELETE FROM records WHERE kind='grant'")
    with start_server(data) as server:
        as_app = kms_client(server.endpoint, app, REGION)
        code = _code(lambda: as_app.encrypt(KeyId=key, Plaintext=b"x", GrantTokens=[token]))
        assert code == "InvalidGrantTokenException"
        as_app.close()
    # drop the MAC key, to have the next start trust (and seal) the rows as they are
    with sqlite3.connect(data / "strongroom.db") as conn:
        conn.execute("DELETE FROM records WHERE kind='storemac'")
    # the data directory remembers its store was sealed: the server will not start over it
    with pytest.raises(Exception), start_server(data):  # noqa: B017 - the server exits
        pass
