"""Aliases: create, update, delete, list; reserved names, patterns, regions."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.errors import (
    AlreadyExistsError,
    InvalidAliasNameError,
    InvalidMarkerError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService, ManualClock


def create_key(service: KeyService, caller: Caller, **request: Any) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "CreateKey", request)["KeyMetadata"]
    return meta


def aliases(service: KeyService, caller: Caller, **request: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = service.call(caller, "ListAliases", request)["Aliases"]
    return listed


def key_behind(service: KeyService, caller: Caller, alias: str) -> str:
    response = service.call(caller, "Encrypt", {"KeyId": alias, "Plaintext": b"x"})
    arn: str = response["KeyId"]
    return arn


def in_region(caller: Caller, region: str) -> Caller:
    return Caller(caller.tenant, caller.principal_arn, caller.access_key_id, region)


def test_create_and_list(service: KeyService, alice: Caller, clock: ManualClock) -> None:
    meta = create_key(service, alice)
    assert (
        service.call(alice, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": meta["Arn"]})
        == {}
    )
    assert aliases(service, alice) == [
        {
            "AliasName": "alias/app",
            "AliasArn": f"arn:aws:kms:us-east-1:{alice.tenant}:alias/app",
            "TargetKeyId": meta["KeyId"],
            "CreationDate": clock.now(),
            "LastUpdatedDate": clock.now(),
        }
    ]
    assert key_behind(service, alice, "alias/app") == meta["Arn"]
    described = service.call(alice, "DescribeKey", {"KeyId": "alias/app"})
    assert described["KeyMetadata"]["KeyId"] == meta["KeyId"]


@pytest.mark.parametrize(
    "name", ["alias/a", "alias/with/slashes", "alias/UPPER_lower-09", "alias/" + "x" * 250]
)
def test_valid_names(service: KeyService, alice: Caller, name: str) -> None:
    key = create_key(service, alice)["KeyId"]
    service.call(alice, "CreateAlias", {"AliasName": name, "TargetKeyId": key})
    assert [a["AliasName"] for a in aliases(service, alice)] == [name]
    assert key_behind(service, alice, name).endswith(key)


def test_update_alias(service: KeyService, alice: Caller, clock: ManualClock) -> None:
    first = create_key(service, alice)
    second = create_key(service, alice)
    service.call(
        alice, "CreateAlias", {"AliasName": "alias/current", "TargetKeyId": first["KeyId"]}
    )
    created = clock.now()
    clock.advance(60)
    assert (
        service.call(
            alice, "UpdateAlias", {"AliasName": "alias/current", "TargetKeyId": second["Arn"]}
        )
        == {}
    )
    (entry,) = aliases(service, alice)
    assert entry["TargetKeyId"] == second["KeyId"]
    assert entry["CreationDate"] == created
    assert entry["LastUpdatedDate"] == created + 60
    assert key_behind(service, alice, "alias/current") == second["Arn"]


def test_delete_alias(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    service.call(alice, "CreateAlias", {"AliasName": "alias/temp", "TargetKeyId": key})
    assert service.call(alice, "DeleteAlias", {"AliasName": "alias/temp"}) == {}
    assert aliases(service, alice) == []
    with pytest.raises(NotFoundError, match="alias/temp"):
        key_behind(service, alice, "alias/temp")
    with pytest.raises(NotFoundError):
        service.call(alice, "DeleteAlias", {"AliasName": "alias/temp"})
    # The key itself stays.
    assert service.call(alice, "DescribeKey", {"KeyId": key})["KeyMetadata"]["Enabled"]
    service.call(alice, "CreateAlias", {"AliasName": "alias/temp", "TargetKeyId": key})


def test_alias_names_are_unique(service: KeyService, alice: Caller) -> None:
    first = create_key(service, alice)["KeyId"]
    second = create_key(service, alice)["KeyId"]
    service.call(alice, "CreateAlias", {"AliasName": "alias/one", "TargetKeyId": first})
    for target in (first, second):
        with pytest.raises(AlreadyExistsError, match="alias/one"):
            service.call(alice, "CreateAlias", {"AliasName": "alias/one", "TargetKeyId": target})
    assert [a["TargetKeyId"] for a in aliases(service, alice)] == [first]
    # Several aliases may point at one key.
    service.call(alice, "CreateAlias", {"AliasName": "alias/two", "TargetKeyId": first})
    assert len(aliases(service, alice, KeyId=first)) == 2


def test_not_found(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    with pytest.raises(NotFoundError):
        service.call(alice, "UpdateAlias", {"AliasName": "alias/none", "TargetKeyId": key})
    missing = "1234abcd-12ab-34cd-56ef-1234567890ab"
    with pytest.raises(NotFoundError):
        service.call(alice, "CreateAlias", {"AliasName": "alias/x", "TargetKeyId": missing})
    with pytest.raises(NotFoundError):
        service.call(alice, "DeleteAlias", {"AliasName": "alias/none"})
    assert aliases(service, alice) == []


@pytest.mark.parametrize(
    "name", ["alias/aws/ebs", "alias/aws/", "alias/aws/a/b"], ids=["ebs", "bare", "nested"]
)
def test_reserved_prefix(service: KeyService, alice: Caller, name: str) -> None:
    key = create_key(service, alice)["KeyId"]
    with pytest.raises(InvalidAliasNameError, match="alias/aws/"):
        service.call(alice, "CreateAlias", {"AliasName": name, "TargetKeyId": key})
    assert aliases(service, alice) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("app", 'must start with the prefix "alias/"'),
        ("alias/", 'must start with the prefix "alias/"'),
        ("Alias/app", 'must start with the prefix "alias/"'),
        ("alias/has space", "aliasName"),
        ("alias/dot.ted", "aliasName"),
        ("alias/colon:inside", "aliasName"),
        ("alias/ümlaut", "aliasName"),
        ("", "aliasName"),
        ("alias/" + "x" * 251, "aliasName"),
    ],
    ids=["no-prefix", "empty-suffix", "case", "space", "dot", "colon", "unicode", "empty", "long"],
)
def test_pattern_violations(service: KeyService, alice: Caller, name: str, message: str) -> None:
    key = create_key(service, alice)["KeyId"]
    for operation in ("CreateAlias", "UpdateAlias"):
        with pytest.raises(ValidationError) as info:
            service.call(alice, operation, {"AliasName": name, "TargetKeyId": key})
        assert message in str(info.value)
    with pytest.raises(ValidationError):
        service.call(alice, "DeleteAlias", {"AliasName": name})
    assert aliases(service, alice) == []


def test_alias_cannot_target_an_alias(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    service.call(alice, "CreateAlias", {"AliasName": "alias/base", "TargetKeyId": key})
    for target in ("alias/base", f"arn:aws:kms:us-east-1:{alice.tenant}:alias/base"):
        with pytest.raises(ValidationError, match="Aliases must refer to keys"):
            service.call(alice, "CreateAlias", {"AliasName": "alias/chain", "TargetKeyId": target})


def test_alias_of_a_key_pending_deletion(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    other = create_key(service, alice)["KeyId"]
    service.call(alice, "CreateAlias", {"AliasName": "alias/old", "TargetKeyId": other})
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key})
    with pytest.raises(InvalidStateError):
        service.call(alice, "CreateAlias", {"AliasName": "alias/new", "TargetKeyId": key})
    with pytest.raises(InvalidStateError):
        service.call(alice, "UpdateAlias", {"AliasName": "alias/old", "TargetKeyId": key})
    assert [a["TargetKeyId"] for a in aliases(service, alice)] == [other]


def test_update_to_a_key_of_another_spec_or_usage_is_refused(
    service: KeyService, alice: Caller
) -> None:
    symmetric = create_key(service, alice)["KeyId"]
    mac = create_key(service, alice, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyId"]
    mac_384 = create_key(service, alice, KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")
    service.call(alice, "CreateAlias", {"AliasName": "alias/sym", "TargetKeyId": symmetric})
    service.call(alice, "CreateAlias", {"AliasName": "alias/mac", "TargetKeyId": mac})
    with pytest.raises(ValidationError, match="key spec"):
        service.call(alice, "UpdateAlias", {"AliasName": "alias/sym", "TargetKeyId": mac})
    with pytest.raises(ValidationError, match="key spec"):
        service.call(
            alice, "UpdateAlias", {"AliasName": "alias/mac", "TargetKeyId": mac_384["KeyId"]}
        )
    targets = {a["AliasName"]: a["TargetKeyId"] for a in aliases(service, alice)}
    assert targets == {"alias/sym": symmetric, "alias/mac": mac}


def test_aliases_are_regional(service: KeyService, alice: Caller) -> None:
    east = create_key(service, alice)
    alice_eu = in_region(alice, "eu-west-1")
    west = create_key(service, alice_eu)
    service.call(alice, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": east["KeyId"]})
    assert aliases(service, alice_eu) == []
    east_alias_arn = f"arn:aws:kms:us-east-1:{alice.tenant}:alias/app"
    for ref in ("alias/app", east_alias_arn, east["Arn"], east["KeyId"]):
        with pytest.raises(NotFoundError):
            key_behind(service, alice_eu, ref)
    with pytest.raises(NotFoundError):
        service.call(alice_eu, "DeleteAlias", {"AliasName": "alias/app"})
    with pytest.raises(NotFoundError):
        service.call(
            alice_eu, "UpdateAlias", {"AliasName": "alias/app", "TargetKeyId": west["KeyId"]}
        )
    # A key of one region cannot get an alias in another.
    with pytest.raises(NotFoundError):
        service.call(alice_eu, "CreateAlias", {"AliasName": "alias/x", "TargetKeyId": east["Arn"]})
    # The same name lives independently in each region.
    service.call(alice_eu, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": west["KeyId"]})
    assert key_behind(service, alice_eu, "alias/app") == west["Arn"]
    assert key_behind(service, alice, "alias/app") == east["Arn"]
    (eu_entry,) = aliases(service, alice_eu)
    assert eu_entry["AliasArn"] == f"arn:aws:kms:eu-west-1:{alice.tenant}:alias/app"


def test_list_aliases_by_key_and_paged(service: KeyService, alice: Caller) -> None:
    first = create_key(service, alice)
    second = create_key(service, alice)
    names = [f"alias/a{i}" for i in range(5)]
    for i, name in enumerate(names):
        target = first if i % 2 == 0 else second
        service.call(alice, "CreateAlias", {"AliasName": name, "TargetKeyId": target["KeyId"]})
    by_first = [a["AliasName"] for a in aliases(service, alice, KeyId=first["Arn"])]
    assert by_first == ["alias/a0", "alias/a2", "alias/a4"]
    seen: list[str] = []
    request: dict[str, Any] = {"Limit": 2}
    while True:
        page = service.call(alice, "ListAliases", request)
        assert len(page["Aliases"]) <= 2
        seen.extend(a["AliasName"] for a in page["Aliases"])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        request["Marker"] = page["NextMarker"]
    assert seen == names
    with pytest.raises(InvalidMarkerError):
        service.call(alice, "ListAliases", {"Marker": "garbage"})
    with pytest.raises(NotFoundError):
        service.call(alice, "ListAliases", {"KeyId": "alias/none"})


def test_aliases_are_per_tenant(service: KeyService, alice: Caller, bob: Caller) -> None:
    alice_key = create_key(service, alice)
    bob_key = create_key(service, bob)
    service.call(
        alice, "CreateAlias", {"AliasName": "alias/shared", "TargetKeyId": alice_key["KeyId"]}
    )
    service.call(bob, "CreateAlias", {"AliasName": "alias/shared", "TargetKeyId": bob_key["KeyId"]})
    assert key_behind(service, alice, "alias/shared") == alice_key["Arn"]
    assert key_behind(service, bob, "alias/shared") == bob_key["Arn"]
    service.call(bob, "DeleteAlias", {"AliasName": "alias/shared"})
    assert key_behind(service, alice, "alias/shared") == alice_key["Arn"]
    with pytest.raises(NotFoundError):
        service.call(
            bob, "CreateAlias", {"AliasName": "alias/x", "TargetKeyId": alice_key["KeyId"]}
        )
