"""Trusted metadata in the key service, over SQLite and PostgreSQL: edited rows are refused.

Rows are edited with the database's own client (``sqlite3``, ``psycopg``), as someone
with write access to the database alone would. The service runs with the record cache off
(``key_record_ttl_s=0``) so every call reads the store. See also
``tests/e2e/test_trusted_metadata.py`` (the same attacks against a server process).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import (
    AccessDeniedError,
    DisabledError,
    InvalidGrantTokenError,
    TamperedRecordError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.ports.row_mac import TAG_BYTES
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller

HEAD = 1 + TAG_BYTES
Raw = Callable[[str, tuple[object, ...]], list[tuple[Any, ...]]]


class Database:
    """Raw SQL on the store's database, outside Strongroom."""

    def __init__(self, run: Raw) -> None:
        self.run = run

    def value(self, tenant: str, kind: str, name: str) -> bytes:
        rows = self.run(
            "SELECT value FROM records WHERE tenant={p} AND kind={p} AND name={p}",
            (tenant, kind, name),
        )
        return bytes(rows[0][0])

    def set(self, tenant: str, kind: str, name: str, value: bytes) -> None:
        self.run(
            "UPDATE records SET value={p} WHERE tenant={p} AND kind={p} AND name={p}",
            (value, tenant, kind, name),
        )

    def edit(
        self, tenant: str, kind: str, name: str, change: Callable[[dict[str, Any]], None]
    ) -> None:
        """Change one row's JSON, keeping its version byte and MAC."""
        value = self.value(tenant, kind, name)
        body = json.loads(value[HEAD:])
        change(body)
        self.set(tenant, kind, name, value[:HEAD] + json.dumps(body).encode())

    def all_values(self) -> bytes:
        return b"".join(bytes(v) for (v,) in self.run("SELECT value FROM records", ()))


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[KeyService, Database]]:
    """A key service without a record cache, and raw access to its database."""
    clock = ManualClock()
    root = LocalRootOfTrust.create(tmp_path / "master.key")
    if request.param == "sqlite":
        path = tmp_path / "store.db"

        def run_sqlite(sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as conn:
                return conn.execute(sql.format(p="?"), params).fetchall()

        service = KeyService(SqliteStore(path), root, clock, key_record_ttl_s=0)
        yield service, Database(run_sqlite)
        service.close()
        return
    import psycopg

    from strongroom.store import PostgresStore

    databases = request.getfixturevalue("postgres_databases")
    dsn = databases.take()

    def run_pg(sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(sql.format(p="%s"), params)
            return list(cur.fetchall()) if cur.description else []

    service = KeyService(PostgresStore(dsn), root, clock, key_record_ttl_s=0)
    yield service, Database(run_pg)
    service.close()
    databases.give_back(dsn)


def _policy(principal: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "kms:*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [{**statement, "Resource": "*"}]})


def _user(service: KeyService, account: str, name: str, **flags: bool) -> Caller:
    principal, _ = service.create_access_key(account, name, **flags)
    return Caller(account, f"arn:aws:iam::{account}:user/{name}", principal.access_key_id)


def create_key(service: KeyService, caller: Caller, **request: Any) -> str:
    key_id: str = service.call(caller, "CreateKey", request)["KeyMetadata"]["KeyId"]
    return key_id


def _encrypt(service: KeyService, caller: Caller, key: str, **extra: Any) -> Any:
    return service.call(caller, "Encrypt", {"KeyId": key, "Plaintext": b"p", **extra})


def test_edits_of_policy_principal_grant_alias_and_state_are_refused(
    setup: tuple[KeyService, Database],
) -> None:
    service, db = setup
    admin = tenant_caller(service, "victim")
    account = admin.tenant
    app = _user(service, account, "app")
    locked = create_key(service, admin, Policy=_policy(admin.principal_arn))
    open_key = create_key(service, admin)
    disabled = create_key(service, admin)
    granted = create_key(service, admin, Policy=_policy(admin.principal_arn))
    service.call(admin, "DisableKey", {"KeyId": disabled})
    service.call(admin, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": open_key})
    grant = service.call(
        admin,
        "CreateGrant",
        {"KeyId": granted, "GranteePrincipal": admin.principal_arn, "Operations": ["Encrypt"]},
    )
    with pytest.raises(AccessDeniedError):
        _encrypt(service, app, locked)
    with pytest.raises(DisabledError):
        _encrypt(service, admin, disabled)
    _encrypt(service, admin, granted, GrantTokens=[grant["GrantToken"]])
    assert b"token_secret" not in db.all_values()

    db.edit(account, "key", locked, lambda r: r.update(policy=_policy("*")))
    with pytest.raises(TamperedRecordError):
        _encrypt(service, app, locked)
    db.edit(account, "key", disabled, lambda r: r.update(key_state="Enabled"))
    with pytest.raises(TamperedRecordError):
        _encrypt(service, admin, disabled)
    db.edit(account, "principal", app.access_key_id or "", lambda r: r.update(is_admin=True))
    with pytest.raises(TamperedRecordError):
        service.lookup_access_key(app.access_key_id or "", "eu-west-1")
    row = f"{granted}/{grant['GrantId']}"
    db.edit(account, "grant", row, lambda r: r.update(grantee_principal=app.principal_arn))
    with pytest.raises(TamperedRecordError):
        _encrypt(service, app, granted, GrantTokens=[grant["GrantToken"]])
    db.edit(account, "alias", "us-east-1/alias/app", lambda r: r.update(key_id=locked))
    with pytest.raises(TamperedRecordError):
        _encrypt(service, app, "alias/app")
    # a row written without a MAC at all (the format of earlier versions) is refused too
    tenant = db.value(account, "tenant", "self")
    db.set(account, "tenant", "self", tenant[HEAD:])
    with pytest.raises(TamperedRecordError):
        service.find_tenant(account)


def test_a_swapped_or_deleted_row_grants_nothing(setup: tuple[KeyService, Database]) -> None:
    service, db = setup
    admin = tenant_caller(service, "victim")
    account = admin.tenant
    app = _user(service, account, "app")
    mine = create_key(service, admin)
    theirs = create_key(service, admin, Policy=_policy(admin.principal_arn))
    token = service.call(
        admin,
        "CreateGrant",
        {"KeyId": theirs, "GranteePrincipal": app.principal_arn, "Operations": ["Encrypt"]},
    )["GrantToken"]
    _encrypt(service, app, theirs, GrantTokens=[token])
    a, b = db.value(account, "key", mine), db.value(account, "key", theirs)
    db.set(account, "key", mine, b)
    db.set(account, "key", theirs, a)
    for key in (mine, theirs):
        with pytest.raises(TamperedRecordError):
            _encrypt(service, admin, key)
    db.set(account, "key", mine, a)
    db.set(account, "key", theirs, b)
    db.run("DELETE FROM records WHERE kind='grant'", ())
    with pytest.raises(InvalidGrantTokenError):
        _encrypt(service, app, theirs, GrantTokens=[token])
    with pytest.raises(AccessDeniedError):
        _encrypt(service, app, theirs)
