"""Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, tokens,
constraints, and how grants combine with key policies in authorisation."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import (
    AccessDeniedError,
    DisabledError,
    DryRunOperationError,
    InvalidGrantIdError,
    InvalidGrantTokenError,
    InvalidMarkerError,
    InvalidStateError,
    LimitExceededError,
    NotFoundError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller


def principal(service: KeyService, account: str, name: str, admin: bool = False) -> Caller:
    record, _ = service.create_access_key(account, user_name=name, is_admin=admin)
    access = service.lookup_access_key(record.access_key_id)
    assert access is not None
    return access.caller


def only(*callers: Caller) -> str:
    """A key policy that allows everything to exactly these principals."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [c.principal_arn for c in callers]},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )


def restricted_key(service: KeyService, owner: Caller, **create: object) -> str:
    """A key whose policy allows only ``owner``: every other principal needs a grant."""
    request = {"Policy": only(owner), **create}
    return str(service.call(owner, "CreateKey", request)["KeyMetadata"]["KeyId"])


def grant(
    service: KeyService, caller: Caller, key: str, grantee: Caller, ops: list[str], **more: Any
) -> dict[str, Any]:
    request = {"KeyId": key, "GranteePrincipal": grantee.principal_arn, "Operations": ops, **more}
    return service.call(caller, "CreateGrant", request)


@pytest.fixture
def carol(service: KeyService, alice: Caller) -> Caller:
    return principal(service, alice.tenant, "carol")


@pytest.fixture
def dave(service: KeyService, alice: Caller) -> Caller:
    return principal(service, alice.tenant, "dave")


# -- lifecycle, over every store and root of trust ---------------------------------------


def test_grant_lifecycle(service: KeyService, alice: Caller, carol: Caller, dave: Caller) -> None:
    key = restricted_key(service, alice)
    blob = service.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"secret"})["CiphertextBlob"]
    with pytest.raises(AccessDeniedError) as denied:
        service.call(carol, "Decrypt", {"CiphertextBlob": blob})
    assert "because no resource-based policy allows the kms:Decrypt action" in str(denied.value)

    created = grant(service, alice, key, carol, ["Decrypt"], RetiringPrincipal=dave.principal_arn)
    assert re.fullmatch(r"[0-9a-f]{64}", created["GrantId"])
    assert created["GrantToken"]
    out = service.call(
        carol, "Decrypt", {"CiphertextBlob": blob, "GrantTokens": [created["GrantToken"]]}
    )
    assert out["Plaintext"] == b"secret"
    with pytest.raises(AccessDeniedError):  # the grant allows Decrypt only
        service.call(carol, "Encrypt", {"KeyId": key, "Plaintext": b"x"})

    listed = service.call(alice, "ListGrants", {"KeyId": key})
    assert listed["Truncated"] is False
    (entry,) = listed["Grants"]
    arn = f"arn:aws:kms:us-east-1:{alice.tenant}:key/{key}"
    assert entry["GrantId"] == created["GrantId"]
    assert entry["KeyId"] == arn
    assert entry["GranteePrincipal"] == carol.principal_arn
    assert entry["RetiringPrincipal"] == dave.principal_arn
    assert entry["IssuingAccount"] == f"arn:aws:iam::{alice.tenant}:root"
    assert entry["Operations"] == ["Decrypt"]
    assert "Constraints" not in entry and "Name" not in entry

    service.call(dave, "RetireGrant", {"GrantToken": created["GrantToken"]})
    assert service.call(alice, "ListGrants", {"KeyId": key})["Grants"] == []
    with pytest.raises(AccessDeniedError):
        service.call(carol, "Decrypt", {"CiphertextBlob": blob})
    with pytest.raises(InvalidGrantTokenError):  # the token of a retired grant is unknown
        service.call(
            alice, "Decrypt", {"CiphertextBlob": blob, "GrantTokens": [created["GrantToken"]]}
        )


def test_revoke_grant(service: KeyService, alice: Caller, carol: Caller) -> None:
    key = restricted_key(service, alice)
    created = grant(service, alice, key, carol, ["Encrypt", "DescribeKey"])
    assert service.call(carol, "DescribeKey", {"KeyId": key})["KeyMetadata"]["KeyId"] == key
    with pytest.raises(AccessDeniedError):  # RevokeGrant is the key policy's to give
        service.call(carol, "RevokeGrant", {"KeyId": key, "GrantId": created["GrantId"]})
    service.call(alice, "RevokeGrant", {"KeyId": key, "GrantId": created["GrantId"]})
    with pytest.raises(AccessDeniedError):
        service.call(carol, "DescribeKey", {"KeyId": key})
    with pytest.raises(NotFoundError, match="not found"):
        service.call(alice, "RevokeGrant", {"KeyId": key, "GrantId": created["GrantId"]})
    with pytest.raises(InvalidGrantIdError):
        service.call(alice, "RevokeGrant", {"KeyId": key, "GrantId": "not-a-grant-id"})


def test_named_grant_is_idempotent(service: KeyService, alice: Caller, carol: Caller) -> None:
    key = restricted_key(service, alice)
    constraints = {"EncryptionContextSubset": {"app": "a"}}
    first = grant(
        service, alice, key, carol, ["Encrypt", "Decrypt"], Name="app-a", Constraints=constraints
    )
    again = grant(
        service, alice, key, carol, ["Decrypt", "Encrypt"], Name="app-a", Constraints=constraints
    )
    assert again["GrantId"] == first["GrantId"]
    assert again["GrantToken"] != first["GrantToken"]
    for token in (first["GrantToken"], again["GrantToken"]):  # interchangeable
        request = {"KeyId": key, "Plaintext": b"x", "EncryptionContext": {"app": "a"}}
        service.call(carol, "Encrypt", {**request, "GrantTokens": [token]})
    other = grant(service, alice, key, carol, ["Encrypt"], Name="app-a", Constraints=constraints)
    assert other["GrantId"] != first["GrantId"]
    unnamed = [grant(service, alice, key, carol, ["Encrypt"])["GrantId"] for _ in range(2)]
    assert unnamed[0] != unnamed[1]
    assert len(service.call(alice, "ListGrants", {"KeyId": key})["Grants"]) == 4


def test_cross_tenant(service: KeyService, alice: Caller, bob: Caller) -> None:
    key = service.call(alice, "CreateKey", {})["KeyMetadata"]
    created = grant(service, alice, key["KeyId"], alice, ["Decrypt"])
    with pytest.raises(AccessDeniedError):
        grant(service, bob, key["Arn"], bob, ["Decrypt"])
    with pytest.raises(NotFoundError):
        grant(service, bob, key["KeyId"], bob, ["Decrypt"])
    with pytest.raises(AccessDeniedError):
        service.call(bob, "ListGrants", {"KeyId": key["Arn"]})
    with pytest.raises(AccessDeniedError):
        service.call(bob, "RevokeGrant", {"KeyId": key["Arn"], "GrantId": created["GrantId"]})
    with pytest.raises(InvalidGrantTokenError):
        service.call(bob, "RetireGrant", {"GrantToken": created["GrantToken"]})
    own = service.call(bob, "CreateKey", {})["KeyMetadata"]["KeyId"]
    with pytest.raises(InvalidGrantTokenError):
        service.call(
            bob,
            "Encrypt",
            {"KeyId": own, "Plaintext": b"x", "GrantTokens": [created["GrantToken"]]},
        )
    assert len(service.call(alice, "ListGrants", {"KeyId": key["KeyId"]})["Grants"]) == 1


def test_deny_statement_beats_grant(service: KeyService, alice: Caller, carol: Caller) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "owner",
                "Effect": "Allow",
                "Principal": {"AWS": alice.principal_arn},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "no carol",
                "Effect": "Deny",
                "Principal": {"AWS": carol.principal_arn},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ],
    }
    key = service.call(alice, "CreateKey", {"Policy": json.dumps(policy)})["KeyMetadata"]["KeyId"]
    blob = service.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"x"})["CiphertextBlob"]
    grant(service, alice, key, carol, ["Decrypt", "Encrypt"])
    service.call(carol, "Encrypt", {"KeyId": key, "Plaintext": b"y"})
    with pytest.raises(AccessDeniedError, match="with an explicit deny in a resource-based policy"):
        service.call(carol, "Decrypt", {"CiphertextBlob": blob})


# -- tokens, states, validation, listings (SQLite and the local root key) -----------------


@pytest.fixture
def svc(sqlite_service: KeyService) -> KeyService:
    return sqlite_service


@pytest.fixture
def owner(svc: KeyService) -> Caller:
    return tenant_caller(svc, "owner")


@pytest.fixture
def user(svc: KeyService, owner: Caller) -> Caller:
    return principal(svc, owner.tenant, "user")


@pytest.mark.parametrize(
    ("constraints", "context", "allowed"),
    [
        ({"EncryptionContextSubset": {"app": "a"}}, {"app": "a"}, True),
        ({"EncryptionContextSubset": {"app": "a"}}, {"app": "a", "x": "y"}, True),
        ({"EncryptionContextSubset": {"app": "a"}}, {"APP": "a"}, True),  # keys ignore case
        ({"EncryptionContextSubset": {"app": "a"}}, {"app": "A"}, False),  # values do not
        ({"EncryptionContextSubset": {"app": "a"}}, {}, False),
        ({"EncryptionContextSubset": {}}, {}, True),
        ({"EncryptionContextEquals": {"app": "a"}}, {"app": "a"}, True),
        ({"EncryptionContextEquals": {"app": "a"}}, {"App": "a"}, True),
        ({"EncryptionContextEquals": {"app": "a"}}, {"app": "a", "x": "y"}, False),
        ({"EncryptionContextEquals": {"app": "a"}}, {}, False),
        ({"EncryptionContextEquals": {}}, {}, True),
        ({"EncryptionContextEquals": {}}, {"x": "y"}, False),
        (
            {
                "EncryptionContextEquals": {"a": "1", "b": "2"},
                "EncryptionContextSubset": {"a": "1"},
            },
            {"a": "1", "b": "2"},
            True,
        ),
    ],
)
def test_constraints(
    svc: KeyService,
    owner: Caller,
    user: Caller,
    constraints: dict[str, dict[str, str]],
    context: dict[str, str],
    allowed: bool,
) -> None:
    key = restricted_key(svc, owner)
    ops = ["Encrypt", "Decrypt", "GenerateDataKey"]
    grant(svc, owner, key, user, ops, Constraints=constraints)
    blob = svc.call(
        owner, "Encrypt", {"KeyId": key, "Plaintext": b"x", "EncryptionContext": context}
    )["CiphertextBlob"]
    calls = [
        ("Encrypt", {"KeyId": key, "Plaintext": b"x", "EncryptionContext": context}),
        ("Decrypt", {"CiphertextBlob": blob, "EncryptionContext": context}),
        ("GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256", "EncryptionContext": context}),
    ]
    for operation, request in calls:
        if allowed:
            svc.call(user, operation, request)
        else:
            with pytest.raises(AccessDeniedError):
                svc.call(user, operation, request)


def test_constraints_do_not_apply_to_describe_key(
    svc: KeyService, owner: Caller, user: Caller
) -> None:
    key = restricted_key(svc, owner)
    constraints = {"EncryptionContextEquals": {"app": "a"}}
    grant(svc, owner, key, user, ["DescribeKey", "GenerateDataKey"], Constraints=constraints)
    assert svc.call(user, "DescribeKey", {"KeyId": key})["KeyMetadata"]["KeyId"] == key
    with pytest.raises(AccessDeniedError):  # GenerateDataKeyWithoutPlaintext is not granted
        svc.call(
            user,
            "GenerateDataKeyWithoutPlaintext",
            {"KeyId": key, "KeySpec": "AES_256", "EncryptionContext": {"app": "a"}},
        )


def test_account_root_grantee_covers_every_principal(
    svc: KeyService, owner: Caller, user: Caller
) -> None:
    key = restricted_key(svc, owner)
    other = principal(svc, owner.tenant, "other")
    for caller in (user, other):  # refused before the grant
        with pytest.raises(AccessDeniedError):
            svc.call(caller, "Encrypt", {"KeyId": key, "Plaintext": b"x"})
    root = f"arn:aws:iam::{owner.tenant}:root"
    svc.call(
        owner, "CreateGrant", {"KeyId": key, "GranteePrincipal": root, "Operations": ["Encrypt"]}
    )
    for caller in (user, other):
        blob = svc.call(caller, "Encrypt", {"KeyId": key, "Plaintext": b"x"})["CiphertextBlob"]
        assert svc.call(owner, "Decrypt", {"CiphertextBlob": blob})["Plaintext"] == b"x"


def test_grant_tokens_are_checked(svc: KeyService, owner: Caller, user: Caller) -> None:
    key = restricted_key(svc, owner)
    token = grant(svc, owner, key, user, ["Encrypt"])["GrantToken"]
    request = {"KeyId": key, "Plaintext": b"x"}
    svc.call(user, "Encrypt", {**request, "GrantTokens": [token]})
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-1] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in ("nonsense", "!!!!", forged, token[:-4], "A" * 100):
        with pytest.raises(InvalidGrantTokenError):
            svc.call(user, "Encrypt", {**request, "GrantTokens": [bad]})
        with pytest.raises(InvalidGrantTokenError):  # the owner does not need it, yet it is checked
            svc.call(owner, "Encrypt", {**request, "GrantTokens": [token, bad]})


def test_operations_must_suit_the_key(svc: KeyService, owner: Caller, user: Caller) -> None:
    hmac_key = restricted_key(svc, owner, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    with pytest.raises(ValidationError, match="Encrypt"):
        grant(svc, owner, hmac_key, user, ["Encrypt"])
    with pytest.raises(ValidationError, match="constraints"):
        grant(
            svc,
            owner,
            hmac_key,
            user,
            ["GenerateMac"],
            Constraints={"EncryptionContextSubset": {"a": "b"}},
        )
    grant(svc, owner, hmac_key, user, ["GenerateMac", "VerifyMac", "DescribeKey"])
    symmetric = restricted_key(svc, owner)
    for wrong in (["Sign"], ["GenerateMac"], ["GetPublicKey"]):
        with pytest.raises(ValidationError):
            grant(svc, owner, symmetric, user, wrong)
    with pytest.raises(ValidationError):  # the model's enum
        grant(svc, owner, symmetric, user, ["RevokeGrant"])
    with pytest.raises(ValidationError):
        grant(svc, owner, symmetric, user, [])
    for bad_principal in (
        "*",
        "someone",
        "arn:aws:iam::123:user/x",
        "arn:aws:iam::123456789012:user/*",
    ):
        with pytest.raises(ValidationError):
            svc.call(
                owner,
                "CreateGrant",
                {"KeyId": symmetric, "GranteePrincipal": bad_principal, "Operations": ["Encrypt"]},
            )
    too_many = {f"k{i}": "v" for i in range(9)}
    with pytest.raises(ValidationError, match="at most 8"):
        grant(
            svc,
            owner,
            symmetric,
            user,
            ["Encrypt"],
            Constraints={"EncryptionContextSubset": too_many},
        )


def test_key_states(svc: KeyService, owner: Caller, user: Caller) -> None:
    key = restricted_key(svc, owner)
    svc.call(owner, "DisableKey", {"KeyId": key})
    created = grant(svc, owner, key, user, ["Encrypt"])  # allowed on a disabled key
    with pytest.raises(DisabledError):
        svc.call(user, "Encrypt", {"KeyId": key, "Plaintext": b"x"})
    svc.call(owner, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    with pytest.raises(InvalidStateError):
        grant(svc, owner, key, user, ["Encrypt"])
    assert len(svc.call(owner, "ListGrants", {"KeyId": key})["Grants"]) == 1
    svc.call(owner, "RevokeGrant", {"KeyId": key, "GrantId": created["GrantId"]})


def test_dry_run(svc: KeyService, owner: Caller, user: Caller) -> None:
    key = restricted_key(svc, owner)
    with pytest.raises(DryRunOperationError):
        grant(svc, owner, key, user, ["Encrypt"], DryRun=True)
    assert svc.call(owner, "ListGrants", {"KeyId": key})["Grants"] == []
    created = grant(svc, owner, key, user, ["Encrypt"], RetiringPrincipal=owner.principal_arn)
    for operation, request in (
        ("RetireGrant", {"GrantToken": created["GrantToken"]}),
        ("RevokeGrant", {"KeyId": key, "GrantId": created["GrantId"]}),
    ):
        with pytest.raises(DryRunOperationError):
            svc.call(owner, operation, {**request, "DryRun": True})
    assert len(svc.call(owner, "ListGrants", {"KeyId": key})["Grants"]) == 1


def test_grant_limit(tmp_path: Path, clock: ManualClock) -> None:
    svc = KeyService(
        SqliteStore(tmp_path / "limit.db"),
        LocalRootOfTrust.create(tmp_path / "limit.key"),
        clock,
        max_grants_per_key=3,
    )
    try:
        owner = tenant_caller(svc, "owner")
        key = svc.call(owner, "CreateKey", {})["KeyMetadata"]["KeyId"]
        named = grant(svc, owner, key, owner, ["Encrypt"], Name="n")
        for _ in range(2):
            grant(svc, owner, key, owner, ["Encrypt"])
        with pytest.raises(LimitExceededError):
            grant(svc, owner, key, owner, ["Encrypt"])
        again = grant(svc, owner, key, owner, ["Encrypt"], Name="n")  # retries still answer
        assert again["GrantId"] == named["GrantId"]
        svc.call(owner, "RevokeGrant", {"KeyId": key, "GrantId": named["GrantId"]})
        grant(svc, owner, key, owner, ["Encrypt"])
    finally:
        svc.close()


# -- retiring ------------------------------------------------------------------------------


def test_who_may_retire(svc: KeyService, owner: Caller, user: Caller) -> None:
    key = restricted_key(svc, owner)
    retirer = principal(svc, owner.tenant, "retirer")
    stranger = principal(svc, owner.tenant, "stranger")
    admin = principal(svc, owner.tenant, "boss", admin=True)
    plain = grant(svc, owner, key, user, ["Encrypt"], RetiringPrincipal=retirer.principal_arn)
    self_retiring = grant(svc, owner, key, user, ["Encrypt", "RetireGrant"])
    by_admin = grant(svc, owner, key, user, ["Encrypt"])

    for caller in (user, stranger, owner):  # the key owner would revoke, not retire
        with pytest.raises(AccessDeniedError):
            svc.call(caller, "RetireGrant", {"GrantToken": plain["GrantToken"]})
    svc.call(retirer, "RetireGrant", {"KeyId": key, "GrantId": plain["GrantId"]})
    with pytest.raises(NotFoundError):
        svc.call(retirer, "RetireGrant", {"KeyId": key, "GrantId": plain["GrantId"]})
    with pytest.raises(AccessDeniedError):
        svc.call(stranger, "RetireGrant", {"GrantToken": self_retiring["GrantToken"]})
    svc.call(user, "RetireGrant", {"GrantToken": self_retiring["GrantToken"]})
    svc.call(admin, "RetireGrant", {"GrantToken": by_admin["GrantToken"]})
    assert svc.call(owner, "ListGrants", {"KeyId": key})["Grants"] == []


def test_retire_grant_arguments(svc: KeyService, owner: Caller, user: Caller) -> None:
    key = restricted_key(svc, owner)
    other_key = restricted_key(svc, owner)
    created = grant(svc, owner, key, user, ["Encrypt", "RetireGrant"])
    with pytest.raises(ValidationError):
        svc.call(user, "RetireGrant", {"KeyId": key})
    with pytest.raises(InvalidGrantIdError):
        svc.call(user, "RetireGrant", {"KeyId": key, "GrantId": "xyz"})
    with pytest.raises(InvalidGrantTokenError):
        svc.call(user, "RetireGrant", {"GrantToken": "bm90IGEgdG9rZW4"})
    with pytest.raises(ValidationError):
        svc.call(user, "RetireGrant", {"GrantToken": created["GrantToken"], "KeyId": other_key})
    with pytest.raises(InvalidGrantIdError):
        svc.call(user, "RetireGrant", {"GrantToken": created["GrantToken"], "GrantId": "0" * 64})
    svc.call(
        user,
        "RetireGrant",
        {"GrantToken": created["GrantToken"], "KeyId": key, "GrantId": created["GrantId"]},
    )


def test_list_retirable_grants(svc: KeyService, owner: Caller, user: Caller) -> None:
    retirer = principal(svc, owner.tenant, "retirer")
    admin = principal(svc, owner.tenant, "boss", admin=True)
    keys = [restricted_key(svc, owner) for _ in range(2)]
    ids = set()
    for key in keys:
        for _ in range(2):
            ids.add(
                grant(svc, owner, key, user, ["Encrypt"], RetiringPrincipal=retirer.principal_arn)[
                    "GrantId"
                ]
            )
    grant(svc, owner, keys[0], user, ["Encrypt"])  # not retirable by retirer
    request = {"RetiringPrincipal": retirer.principal_arn, "Limit": 3}
    first = svc.call(retirer, "ListRetirableGrants", request)
    assert first["Truncated"] is True and len(first["Grants"]) == 3
    second = svc.call(retirer, "ListRetirableGrants", {**request, "Marker": first["NextMarker"]})
    assert second["Truncated"] is False and len(second["Grants"]) == 1
    seen = {g["GrantId"] for g in first["Grants"] + second["Grants"]}
    assert seen == ids
    assert all(g["RetiringPrincipal"] == retirer.principal_arn for g in first["Grants"])
    assert (
        len(
            svc.call(admin, "ListRetirableGrants", {"RetiringPrincipal": retirer.principal_arn})[
                "Grants"
            ]
        )
        == 4
    )
    with pytest.raises(AccessDeniedError):
        svc.call(user, "ListRetirableGrants", {"RetiringPrincipal": retirer.principal_arn})
    with pytest.raises(InvalidMarkerError):
        svc.call(retirer, "ListRetirableGrants", {**request, "Marker": "garbage"})


def test_only_an_admin_lists_the_grants_the_whole_account_may_retire(
    svc: KeyService, owner: Caller, user: Caller
) -> None:
    root = f"arn:aws:iam::{owner.tenant}:root"
    admin = principal(svc, owner.tenant, "chief", admin=True)
    key = restricted_key(svc, owner)
    made = grant(svc, owner, key, user, ["Encrypt"], RetiringPrincipal=root)["GrantId"]
    for account_wide in (root, owner.tenant):
        with pytest.raises(AccessDeniedError):
            svc.call(user, "ListRetirableGrants", {"RetiringPrincipal": account_wide})
    listed = svc.call(admin, "ListRetirableGrants", {"RetiringPrincipal": root})["Grants"]
    assert [g["GrantId"] for g in listed] == [made]
    mine = svc.call(user, "ListRetirableGrants", {"RetiringPrincipal": user.principal_arn})
    assert mine["Grants"] == []


def test_list_grants_paging_and_filters(svc: KeyService, owner: Caller, user: Caller) -> None:
    key = restricted_key(svc, owner)
    other = principal(svc, owner.tenant, "other")
    mine = {grant(svc, owner, key, user, ["Encrypt"])["GrantId"] for _ in range(3)}
    theirs = grant(svc, owner, key, other, ["Decrypt"])["GrantId"]
    seen, marker, pages = [], None, 0
    while True:
        request = {"KeyId": key, "Limit": 2, **({"Marker": marker} if marker else {})}
        out = svc.call(owner, "ListGrants", request)
        seen += [g["GrantId"] for g in out["Grants"]]
        pages += 1
        if not out["Truncated"]:
            assert "NextMarker" not in out
            break
        marker = out["NextMarker"]
    assert pages == 2 and sorted(seen) == sorted(mine | {theirs}) and len(seen) == 4
    by_grantee = svc.call(
        owner, "ListGrants", {"KeyId": key, "GranteePrincipal": user.principal_arn}
    )
    assert {g["GrantId"] for g in by_grantee["Grants"]} == mine
    by_id = svc.call(owner, "ListGrants", {"KeyId": key, "GrantId": theirs})
    assert [g["GrantId"] for g in by_id["Grants"]] == [theirs]
    with pytest.raises(InvalidMarkerError):
        svc.call(owner, "ListGrants", {"KeyId": key, "Marker": "nope"})
    with pytest.raises(InvalidGrantIdError):
        svc.call(owner, "ListGrants", {"KeyId": key, "GrantId": "nope"})
    with pytest.raises(AccessDeniedError):  # grants never give ListGrants
        svc.call(user, "ListGrants", {"KeyId": key})


# -- grants that allow CreateGrant ---------------------------------------------------------


def test_create_grant_through_a_grant(svc: KeyService, owner: Caller, user: Caller) -> None:
    key = restricted_key(svc, owner)
    third = principal(svc, owner.tenant, "third")
    parent_constraints: dict[str, dict[str, str]] | None = {
        "EncryptionContextSubset": {"tenant": "t1"}
    }
    parent = grant(
        svc, owner, key, user, ["Encrypt", "Decrypt", "CreateGrant"], Constraints=parent_constraints
    )
    tokens = [parent["GrantToken"]]
    # a subset of the operations, constraints at least as strict: allowed
    constraints: dict[str, dict[str, str]] | None
    for constraints in (
        {"EncryptionContextSubset": {"tenant": "t1"}},
        {"EncryptionContextSubset": {"tenant": "t1", "doc": "d"}},
        {"EncryptionContextEquals": {"TENANT": "t1", "doc": "d"}},
    ):
        grant(svc, user, key, third, ["Decrypt"], Constraints=constraints, GrantTokens=tokens)
    # broader operations or looser constraints: denied
    for ops, constraints in (
        (["GenerateDataKey"], parent_constraints),
        (["Decrypt"], None),
        (["Decrypt"], {"EncryptionContextSubset": {"tenant": "t2"}}),
        (["Decrypt"], {"EncryptionContextEquals": {"doc": "d"}}),
    ):
        more = {} if constraints is None else {"Constraints": constraints}
        with pytest.raises(AccessDeniedError, match="kms:CreateGrant"):
            grant(svc, user, key, third, ops, **more)
    with pytest.raises(AccessDeniedError):  # without CreateGrant in a grant, nothing
        grant(svc, third, key, user, ["Decrypt"], Constraints=parent_constraints)
