"""Key lifecycle: creation, metadata, listing, enable/disable, deletion, rotation, tags, policy."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from strongroom.crypto import parse_header
from strongroom.errors import (
    DisabledError,
    InvalidCiphertextError,
    InvalidMarkerError,
    InvalidStateError,
    LimitExceededError,
    NotFoundError,
    TagError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.kms.ops.rotation import ON_DEMAND_ROTATION_LIMIT
from strongroom.testing.service import decrypt, describe, encrypt, tenant_caller

DAY = 86400.0


def create_key(service: KeyService, caller: Caller, **request: Any) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "CreateKey", request)["KeyMetadata"]
    return meta


def rows(service: KeyService, tenant: str, kind: str, prefix: str = "") -> list[str]:
    return [name for name, _ in service.store.read(lambda tx: tx.scan(tenant, kind, prefix))]


# -- CreateKey and KeyMetadata -----------------------------------------------------------------


def test_create_key_defaults(service: KeyService, alice: Caller, clock: ManualClock) -> None:
    meta = create_key(service, alice)
    key_id = meta["KeyId"]
    assert str(uuid.UUID(key_id)) == key_id
    assert meta == {
        "AWSAccountId": alice.tenant,
        "KeyId": key_id,
        "Arn": f"arn:aws:kms:us-east-1:{alice.tenant}:key/{key_id}",
        "CreationDate": clock.now(),
        "Enabled": True,
        "Description": "",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled",
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "MultiRegion": False,
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "CurrentKeyMaterialId": meta["CurrentKeyMaterialId"],
    }
    assert re.fullmatch("[0-9a-f]{64}", meta["CurrentKeyMaterialId"])
    assert describe(service, alice, key_id) == meta
    assert describe(service, alice, meta["Arn"]) == meta


def test_create_key_options(service: KeyService, alice: Caller) -> None:
    meta = create_key(
        service,
        alice,
        Description="payroll",
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
        Tags=[{"TagKey": "team", "TagValue": "hr"}, {"TagKey": "env", "TagValue": ""}],
    )
    assert meta["Description"] == "payroll"
    tags = service.call(alice, "ListResourceTags", {"KeyId": meta["KeyId"]})
    assert tags["Tags"] == [
        {"TagKey": "env", "TagValue": ""},
        {"TagKey": "team", "TagValue": "hr"},
    ]
    legacy = create_key(service, alice, CustomerMasterKeySpec="SYMMETRIC_DEFAULT")
    assert legacy["KeySpec"] == "SYMMETRIC_DEFAULT"


def test_create_mac_key_metadata(service: KeyService, alice: Caller) -> None:
    meta = create_key(service, alice, KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")
    assert meta["KeySpec"] == "HMAC_384"
    assert meta["KeyUsage"] == "GENERATE_VERIFY_MAC"
    assert meta["MacAlgorithms"] == ["HMAC_SHA_384"]
    assert "EncryptionAlgorithms" not in meta


def test_create_external_key_is_pending_import(service: KeyService, alice: Caller) -> None:
    meta = create_key(service, alice, Origin="EXTERNAL")
    assert meta["Origin"] == "EXTERNAL"
    assert meta["KeyState"] == "PendingImport"
    assert meta["Enabled"] is False
    with pytest.raises(InvalidStateError):
        encrypt(service, alice, meta["KeyId"])


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (
            {"KeySpec": "SYMMETRIC_DEFAULT", "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT"},
            ValidationError,
            "KeySpec and CustomerMasterKeySpec",
        ),
        ({"KeyUsage": "SIGN_VERIFY"}, ValidationError, "SIGN_VERIFY"),
        ({"KeySpec": "HMAC_256"}, ValidationError, "HMAC_256"),
        ({"KeySpec": "SM2"}, UnsupportedOperationError, "SM2"),
        ({"Origin": "AWS_CLOUDHSM"}, UnsupportedOperationError, "AWS_CLOUDHSM"),
        ({"CustomKeyStoreId": "cks-1"}, UnsupportedOperationError, "key store"),
    ],
)
def test_create_key_refusals(
    service: KeyService,
    alice: Caller,
    request_: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        service.call(alice, "CreateKey", request_)
    assert service.call(alice, "ListKeys", {})["Keys"] == []


# -- ListKeys --------------------------------------------------------------------------------


def test_list_keys_pages_with_limit_and_marker(service: KeyService, alice: Caller) -> None:
    created = {create_key(service, alice)["KeyId"] for _ in range(5)}
    seen: list[dict[str, str]] = []
    marker: str | None = None
    pages = 0
    while True:
        request: dict[str, Any] = {"Limit": 2}
        if marker is not None:
            request["Marker"] = marker
        response = service.call(alice, "ListKeys", request)
        pages += 1
        assert len(response["Keys"]) <= 2
        seen.extend(response["Keys"])
        if not response["Truncated"]:
            assert "NextMarker" not in response
            break
        marker = response["NextMarker"]
    assert pages == 3
    ids = [k["KeyId"] for k in seen]
    assert len(ids) == len(set(ids)) == 5
    assert set(ids) == created
    for entry in seen:
        assert entry["KeyArn"] == f"arn:aws:kms:us-east-1:{alice.tenant}:key/{entry['KeyId']}"

    everything = service.call(alice, "ListKeys", {})
    assert everything["Truncated"] is False
    assert {k["KeyId"] for k in everything["Keys"]} == created
    exact = service.call(alice, "ListKeys", {"Limit": 5})
    assert exact["Truncated"] is False
    assert len(exact["Keys"]) == 5


def test_list_keys_default_page_is_100(sqlite_service: KeyService) -> None:
    from strongroom.testing.service import tenant_caller

    carol = tenant_caller(sqlite_service, "carol")
    for _ in range(101):
        sqlite_service.call(carol, "CreateKey", {})
    first = sqlite_service.call(carol, "ListKeys", {})
    assert len(first["Keys"]) == 100
    assert first["Truncated"] is True
    rest = sqlite_service.call(carol, "ListKeys", {"Marker": first["NextMarker"]})
    assert len(rest["Keys"]) == 1
    assert rest["Truncated"] is False


def test_list_keys_refuses_a_foreign_marker(service: KeyService, alice: Caller) -> None:
    create_key(service, alice)
    with pytest.raises(InvalidMarkerError):
        service.call(alice, "ListKeys", {"Marker": "not-a-marker"})


def test_list_keys_shows_only_the_callers_tenant_and_region(
    service: KeyService, alice: Caller, bob: Caller
) -> None:
    mine = create_key(service, alice)["KeyId"]
    create_key(service, bob)
    alice_eu = Caller(alice.tenant, alice.principal_arn, alice.access_key_id, "eu-west-1")
    theirs = create_key(service, alice_eu)
    assert theirs["Arn"].startswith(f"arn:aws:kms:eu-west-1:{alice.tenant}:key/")
    assert [k["KeyId"] for k in service.call(alice, "ListKeys", {})["Keys"]] == [mine]
    assert [k["KeyId"] for k in service.call(alice_eu, "ListKeys", {})["Keys"]] == [theirs["KeyId"]]
    with pytest.raises(NotFoundError):
        describe(service, alice, theirs["KeyId"])
    with pytest.raises(NotFoundError):
        describe(service, alice, theirs["Arn"])


# -- Enable / Disable ----------------------------------------------------------------------------


def test_enable_and_disable(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    assert service.call(alice, "DisableKey", {"KeyId": key}) == {}
    meta = describe(service, alice, key)
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    service.call(alice, "DisableKey", {"KeyId": key})  # idempotent, as AWS
    assert service.call(alice, "EnableKey", {"KeyId": key}) == {}
    meta = describe(service, alice, key)
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)


def test_disable_drops_cached_material(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key)
    assert decrypt(service, alice, blob) == b"data"
    cached = [k for k in service.kernel.materials._material._items if k[1] == key]
    assert cached
    service.call(alice, "DisableKey", {"KeyId": key})
    assert [k for k in service.kernel.materials._material._items if k[1] == key] == []


# -- ScheduleKeyDeletion / CancelKeyDeletion ------------------------------------------------------


def test_schedule_deletion_defaults_to_30_days(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    meta = create_key(service, alice)
    response = service.call(alice, "ScheduleKeyDeletion", {"KeyId": meta["KeyId"]})
    assert response == {
        "KeyId": meta["Arn"],
        "DeletionDate": clock.now() + 30 * DAY,
        "KeyState": "PendingDeletion",
        "PendingWindowInDays": 30,
    }
    described = describe(service, alice, meta["KeyId"])
    assert described["KeyState"] == "PendingDeletion"
    assert described["Enabled"] is False
    assert described["DeletionDate"] == clock.now() + 30 * DAY
    assert described["PendingDeletionWindowInDays"] == 30


@pytest.mark.parametrize("days", [7, 19, 30])
def test_schedule_deletion_window_bounds(
    service: KeyService, alice: Caller, clock: ManualClock, days: int
) -> None:
    key = create_key(service, alice)["KeyId"]
    response = service.call(
        alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": days}
    )
    assert response["PendingWindowInDays"] == days
    assert response["DeletionDate"] == clock.now() + days * DAY


@pytest.mark.parametrize(("days", "bound"), [(6, "7"), (31, "30"), (1, "7"), (365, "30")])
def test_schedule_deletion_outside_7_to_30_days_is_refused(
    service: KeyService, alice: Caller, days: int, bound: str
) -> None:
    key = create_key(service, alice)["KeyId"]
    with pytest.raises(ValidationError) as info:
        service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": days})
    message = str(info.value)
    assert "pendingWindowInDays" in message
    assert f"'{days}'" in message
    assert bound in message
    assert "between 7 and 30" in message
    assert describe(service, alice, key)["KeyState"] == "Enabled"


def test_schedule_deletion_twice_is_invalid_state(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    with pytest.raises(InvalidStateError, match="pending deletion"):
        service.call(alice, "ScheduleKeyDeletion", {"KeyId": key})
    for operation in ("EnableKey", "DisableKey"):
        with pytest.raises(InvalidStateError):
            service.call(alice, operation, {"KeyId": key})


def test_cancel_deletion_leaves_the_key_disabled(service: KeyService, alice: Caller) -> None:
    meta = create_key(service, alice)
    key = meta["KeyId"]
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    assert service.call(alice, "CancelKeyDeletion", {"KeyId": key}) == {"KeyId": meta["Arn"]}
    described = describe(service, alice, key)
    assert described["KeyState"] == "Disabled"
    assert "DeletionDate" not in described
    assert "PendingDeletionWindowInDays" not in described
    with pytest.raises(InvalidStateError, match="not pending deletion"):
        service.call(alice, "CancelKeyDeletion", {"KeyId": key})


def test_cancel_deletion_of_a_disabled_key(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    service.call(alice, "DisableKey", {"KeyId": key})
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key})
    service.call(alice, "CancelKeyDeletion", {"KeyId": key})
    assert describe(service, alice, key)["KeyState"] == "Disabled"


def test_deletion_after_the_window(service: KeyService, alice: Caller, clock: ManualClock) -> None:
    doomed = create_key(service, alice)
    kept = create_key(service, alice)
    key = doomed["KeyId"]
    service.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    service.call(alice, "CreateAlias", {"AliasName": "alias/doomed", "TargetKeyId": key})
    service.call(alice, "CreateAlias", {"AliasName": "alias/kept", "TargetKeyId": kept["KeyId"]})
    service.call(alice, "TagResource", {"KeyId": key, "Tags": [{"TagKey": "a", "TagValue": "b"}]})
    blob = encrypt(service, alice, key, b"gone soon")
    kept_blob = encrypt(service, alice, kept["KeyId"], b"stays")
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})

    clock.advance(7 * DAY - 1)
    assert service.run_maintenance()["deleted"] == []
    assert describe(service, alice, key)["KeyState"] == "PendingDeletion"

    clock.advance(1)
    for operation, request in [
        ("DescribeKey", {"KeyId": key}),
        ("DescribeKey", {"KeyId": doomed["Arn"]}),
        ("CancelKeyDeletion", {"KeyId": key}),
        ("Encrypt", {"KeyId": key, "Plaintext": b"x"}),
        ("ListResourceTags", {"KeyId": key}),
    ]:
        with pytest.raises(NotFoundError):
            service.call(alice, operation, request)
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob)
    listed = [k["KeyId"] for k in service.call(alice, "ListKeys", {})["Keys"]]
    assert listed == [kept["KeyId"]]
    assert key in rows(service, alice.tenant, "key")  # not yet shredded
    assert len(rows(service, alice.tenant, "keyver", key + "/")) == 2

    assert service.run_maintenance()["deleted"] == [doomed["Arn"]]
    assert key not in rows(service, alice.tenant, "key")
    assert rows(service, alice.tenant, "keyver", key + "/") == []
    assert rows(service, alice.tenant, "alias") == ["us-east-1/alias/kept"]
    assert all(key not in name for name in rows(service, alice.tenant, "grant"))
    assert [k for k in service.kernel.materials._material._items if k[1] == key] == []
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob)
    with pytest.raises(NotFoundError):
        encrypt(service, alice, "alias/doomed")
    assert decrypt(service, alice, kept_blob) == b"stays"
    assert service.run_maintenance()["deleted"] == []

    service.audit.flush()
    events = [json.loads(r.body) for r in service.store.read(lambda tx: tx.read_audit(0, 100_000))]
    deletions = [e for e in events if e.get("operation") == "DeleteKey"]
    assert [(e["keyArn"], e["result"]) for e in deletions] == [(doomed["Arn"], "Success")]


# -- rotation ------------------------------------------------------------------------------------


def test_rotation_status_and_period(service: KeyService, alice: Caller, clock: ManualClock) -> None:
    meta = create_key(service, alice)
    key = meta["KeyId"]
    status = service.call(alice, "GetKeyRotationStatus", {"KeyId": key})
    assert status == {"KeyRotationEnabled": False, "KeyId": key}  # the bare id, as AWS
    assert service.call(alice, "EnableKeyRotation", {"KeyId": key}) == {}
    status = service.call(alice, "GetKeyRotationStatus", {"KeyId": key})
    assert status == {
        "KeyRotationEnabled": True,
        "KeyId": key,
        "RotationPeriodInDays": 365,
        "NextRotationDate": clock.now() + 365 * DAY,
    }
    for days in (90, 2560):
        service.call(alice, "EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": days})
        status = service.call(alice, "GetKeyRotationStatus", {"KeyId": key})
        assert status["RotationPeriodInDays"] == days
        assert status["NextRotationDate"] == clock.now() + days * DAY
    service.call(alice, "DisableKeyRotation", {"KeyId": key})
    status = service.call(alice, "GetKeyRotationStatus", {"KeyId": key})
    assert status["KeyRotationEnabled"] is False


@pytest.mark.parametrize(
    ("days", "constraint"),
    [(89, "greater than or equal to 90"), (2561, "less than or equal to 2560")],
)
def test_rotation_period_bounds(
    service: KeyService, alice: Caller, days: int, constraint: str
) -> None:
    key = create_key(service, alice)["KeyId"]
    with pytest.raises(ValidationError) as info:
        service.call(alice, "EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": days})
    assert "rotationPeriodInDays" in str(info.value)
    assert constraint in str(info.value)
    status = service.call(alice, "GetKeyRotationStatus", {"KeyId": key})
    assert status["KeyRotationEnabled"] is False


def test_automatic_rotation(service: KeyService, alice: Caller, clock: ManualClock) -> None:
    meta = create_key(service, alice)
    key = meta["KeyId"]
    service.call(alice, "EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": 90})
    old_blob = encrypt(service, alice, key, b"v1")
    assert parse_header(old_blob)[0].key_version == 1

    clock.advance(90 * DAY - 1)
    assert service.run_maintenance()["rotated"] == []
    clock.advance(1)
    rotated_at = clock.now()
    assert service.run_maintenance()["rotated"] == [meta["Arn"]]
    assert service.run_maintenance()["rotated"] == []  # not due again yet

    new_blob = encrypt(service, alice, key, b"v2")
    assert parse_header(new_blob)[0].key_version == 2
    assert decrypt(service, alice, old_blob) == b"v1"
    assert decrypt(service, alice, new_blob) == b"v2"
    status = service.call(alice, "GetKeyRotationStatus", {"KeyId": key})
    assert status["NextRotationDate"] == rotated_at + 90 * DAY
    rotations = service.call(alice, "ListKeyRotations", {"KeyId": key})
    current = service.call(alice, "DescribeKey", {"KeyId": key})["KeyMetadata"]
    assert current["CurrentKeyMaterialId"] != meta["CurrentKeyMaterialId"]
    assert rotations == {
        "Rotations": [
            {
                "KeyId": key,
                "RotationDate": rotated_at,
                "RotationType": "AUTOMATIC",
                "KeyMaterialId": current["CurrentKeyMaterialId"],
                "KeyMaterialState": "CURRENT",
            }
        ],
        "Truncated": False,
    }

    clock.advance(90 * DAY)
    assert service.run_maintenance()["rotated"] == [meta["Arn"]]
    assert parse_header(encrypt(service, alice, key))[0].key_version == 3
    assert decrypt(service, alice, old_blob) == b"v1"


def test_automatic_rotation_skips_disabled_and_turned_off_keys(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    off = create_key(service, alice)["KeyId"]
    disabled = create_key(service, alice)["KeyId"]
    never = create_key(service, alice)["KeyId"]
    for key in (off, disabled):
        service.call(alice, "EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": 90})
    service.call(alice, "DisableKeyRotation", {"KeyId": off})
    service.call(alice, "DisableKey", {"KeyId": disabled})
    clock.advance(400 * DAY)
    assert service.run_maintenance()["rotated"] == []
    for key in (off, never):
        assert parse_header(encrypt(service, alice, key))[0].key_version == 1


def test_rotate_on_demand(service: KeyService, alice: Caller, clock: ManualClock) -> None:
    created = create_key(service, alice)
    key = created["KeyId"]
    blobs = [encrypt(service, alice, key, b"v1")]
    dates = []
    for version in (2, 3, 4):
        clock.advance(DAY)
        reply = service.call(alice, "RotateKeyOnDemand", {"KeyId": key})
        assert reply == {"KeyId": created["Arn"]}  # the key ARN, as AWS answers it
        dates.append(clock.now())
        blob = encrypt(service, alice, key, f"v{version}".encode())
        assert parse_header(blob)[0].key_version == version
        blobs.append(blob)
    assert [decrypt(service, alice, b) for b in blobs] == [b"v1", b"v2", b"v3", b"v4"]
    data_key = service.call(alice, "GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})
    assert parse_header(data_key["CiphertextBlob"])[0].key_version == 4

    listed = service.call(alice, "ListKeyRotations", {"KeyId": key})
    assert listed["Truncated"] is False
    ids = [r["KeyMaterialId"] for r in listed["Rotations"]]
    assert listed["Rotations"] == [
        {
            "KeyId": key,
            "RotationDate": d,
            "RotationType": "ON_DEMAND",
            "KeyMaterialId": material,
            "KeyMaterialState": "CURRENT" if d == dates[-1] else "NON_CURRENT",
        }
        for d, material in zip(dates, ids, strict=True)
    ]
    # each version has its own KeyMaterialId: the current one is DescribeKey's, and a
    # ciphertext names the material it was sealed under
    meta = service.call(alice, "DescribeKey", {"KeyId": key})["KeyMetadata"]
    assert meta["CurrentKeyMaterialId"] == ids[-1] == data_key["KeyMaterialId"]
    everything = service.call(
        alice, "ListKeyRotations", {"KeyId": key, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}
    )["Rotations"]
    assert everything[1:] == listed["Rotations"]
    assert everything[0]["KeyMaterialState"] == "NON_CURRENT"
    assert "RotationType" not in everything[0]
    materials = [everything[0]["KeyMaterialId"], *ids]
    assert len(set(materials)) == 4
    assert [decrypt_material(service, alice, b) for b in blobs] == materials
    # Paging, one rotation at a time.
    seen = []
    request: dict[str, Any] = {"KeyId": key, "Limit": 1}
    while True:
        page = service.call(alice, "ListKeyRotations", request)
        seen.extend(page["Rotations"])
        if not page["Truncated"]:
            break
        request["Marker"] = page["NextMarker"]
    assert seen == listed["Rotations"]
    other = create_key(service, alice)["KeyId"]
    for marker in ("garbage", page_marker_of(other)):
        with pytest.raises(InvalidMarkerError):
            service.call(alice, "ListKeyRotations", {"KeyId": key, "Marker": marker})


def test_on_demand_rotations_stop_at_the_quota(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    """25 on-demand rotations per key, as AWS KMS allows; automatic ones go on after."""
    key = create_key(service, alice)["KeyId"]
    service.call(alice, "EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": 90})
    for _ in range(ON_DEMAND_ROTATION_LIMIT):
        service.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    with pytest.raises(LimitExceededError, match="rotated on demand 25 times"):
        service.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    clock.advance(91 * DAY)
    arn = service.call(alice, "DescribeKey", {"KeyId": key})["KeyMetadata"]["Arn"]
    assert service.rotate_due_keys() == [arn]
    rotations = service.call(alice, "ListKeyRotations", {"KeyId": key})["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"] * 25 + ["AUTOMATIC"]
    with pytest.raises(LimitExceededError):
        service.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    # the quota is per key
    other = create_key(service, alice)
    reply = service.call(alice, "RotateKeyOnDemand", {"KeyId": other["KeyId"]})
    assert reply == {"KeyId": other["Arn"]}


def decrypt_material(service: KeyService, alice: Caller, blob: bytes) -> str:
    """The KeyMaterialId Decrypt reports for ``blob``."""
    reply = service.call(alice, "Decrypt", {"CiphertextBlob": blob})
    return str(reply["KeyMaterialId"])


def page_marker_of(key_id: str) -> str:
    """A marker ListKeyRotations could issue, but for another key."""
    return f"{key_id}/{1:010d}"


def test_rotation_refusals(service: KeyService, alice: Caller) -> None:
    mac = create_key(service, alice, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    external = create_key(service, alice, Origin="EXTERNAL")
    for key in (mac["KeyId"], external["KeyId"]):
        for operation in ("EnableKeyRotation", "RotateKeyOnDemand"):
            with pytest.raises((UnsupportedOperationError, InvalidStateError)):
                service.call(alice, operation, {"KeyId": key})
    signing = create_key(service, alice, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    for key in (mac["KeyId"], signing["KeyId"]):
        for operation in ("GetKeyRotationStatus", "ListKeyRotations"):
            with pytest.raises(UnsupportedOperationError, match="can be rotated"):
                service.call(alice, operation, {"KeyId": key})
    # imported keys rotate on demand only (tests/kms/test_import_rotation.py)
    status = service.call(alice, "GetKeyRotationStatus", {"KeyId": external["KeyId"]})
    assert status == {"KeyRotationEnabled": False, "KeyId": external["KeyId"]}
    listed = service.call(alice, "ListKeyRotations", {"KeyId": external["KeyId"]})
    assert listed == {"Rotations": [], "Truncated": False}
    pending = create_key(service, alice)["KeyId"]
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": pending})
    for operation in ("EnableKeyRotation", "RotateKeyOnDemand", "DisableKeyRotation"):
        with pytest.raises(InvalidStateError):
            service.call(alice, operation, {"KeyId": pending})


def test_rotation_of_a_pending_deletion_key_does_not_happen(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    meta = create_key(service, alice)
    service.call(alice, "EnableKeyRotation", {"KeyId": meta["KeyId"], "RotationPeriodInDays": 90})
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": meta["KeyId"], "PendingWindowInDays": 30})
    clock.advance(95 * DAY)
    assert service.run_maintenance() == {"rotated": [], "deleted": [meta["Arn"]]}


# -- tags --------------------------------------------------------------------------------------


def test_tag_untag_and_list(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    tags = [{"TagKey": f"k{i:02d}", "TagValue": f"v{i}"} for i in range(5)]
    assert service.call(alice, "TagResource", {"KeyId": key, "Tags": tags}) == {}
    service.call(alice, "TagResource", {"KeyId": key, "Tags": [{"TagKey": "k00", "TagValue": "X"}]})
    listed = service.call(alice, "ListResourceTags", {"KeyId": key})
    assert listed["Truncated"] is False
    assert listed["Tags"][0] == {"TagKey": "k00", "TagValue": "X"}
    assert [t["TagKey"] for t in listed["Tags"]] == [f"k{i:02d}" for i in range(5)]

    first = service.call(alice, "ListResourceTags", {"KeyId": key, "Limit": 2})
    assert first["Truncated"] is True
    assert [t["TagKey"] for t in first["Tags"]] == ["k00", "k01"]
    second = service.call(
        alice, "ListResourceTags", {"KeyId": key, "Limit": 2, "Marker": first["NextMarker"]}
    )
    assert [t["TagKey"] for t in second["Tags"]] == ["k02", "k03"]

    assert service.call(alice, "UntagResource", {"KeyId": key, "TagKeys": ["k01", "zz"]}) == {}
    keys = [t["TagKey"] for t in service.call(alice, "ListResourceTags", {"KeyId": key})["Tags"]]
    assert keys == ["k00", "k02", "k03", "k04"]


@pytest.mark.parametrize("tag_key", ["aws:owner", "AWS:owner", "aws:"])
def test_tags_with_the_aws_prefix_are_refused(
    service: KeyService, alice: Caller, tag_key: str
) -> None:
    key = create_key(service, alice)["KeyId"]
    tags = [{"TagKey": tag_key, "TagValue": "x"}]
    reserved = "^Tags beginning with aws: are reserved$"  # AWS's words, nothing appended
    with pytest.raises(TagError, match=reserved):
        service.call(alice, "TagResource", {"KeyId": key, "Tags": tags})
    with pytest.raises(TagError, match=reserved):
        service.call(alice, "CreateKey", {"Tags": tags})
    assert service.call(alice, "ListResourceTags", {"KeyId": key})["Tags"] == []
    with pytest.raises(TagError, match=reserved):
        service.call(alice, "UntagResource", {"KeyId": key, "TagKeys": ["mine", tag_key]})
    assert len(service.call(alice, "ListKeys", {})["Keys"]) == 1


def test_tag_limits(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    fifty = [{"TagKey": f"t{i}", "TagValue": "v"} for i in range(50)]
    service.call(alice, "TagResource", {"KeyId": key, "Tags": fifty})
    service.call(alice, "TagResource", {"KeyId": key, "Tags": fifty[:3]})  # overwrite is fine
    with pytest.raises(TagError, match=r"^Too many tags$"):
        service.call(
            alice, "TagResource", {"KeyId": key, "Tags": [{"TagKey": "one-more", "TagValue": ""}]}
        )
    with pytest.raises(TagError, match=r"^Too many tags$"):
        service.call(
            alice, "CreateKey", {"Tags": [{"TagKey": f"t{i}", "TagValue": "v"} for i in range(51)]}
        )
    for second in ("b", "a"):  # the same key twice in one request, whatever the values
        with pytest.raises(TagError, match=r"^Duplicate tag keys$"):
            service.call(
                alice,
                "TagResource",
                {
                    "KeyId": key,
                    "Tags": [
                        {"TagKey": "dup", "TagValue": "a"},
                        {"TagKey": "dup", "TagValue": second},
                    ],
                },
            )
    limits = [
        ({"TagKey": "k" * 128, "TagValue": "v" * 256}, None),
        ({"TagKey": "k" * 129, "TagValue": "v"}, "tags.1.member.tagKey"),
        ({"TagKey": "", "TagValue": "v"}, "tags.1.member.tagKey"),
        ({"TagKey": "k", "TagValue": "v" * 257}, "tags.1.member.tagValue"),
    ]
    other = create_key(service, alice)["KeyId"]
    for tag, member in limits:
        if member is None:
            service.call(alice, "TagResource", {"KeyId": other, "Tags": [tag]})
        else:
            with pytest.raises(ValidationError, match=member.replace(".", r"\.")):
                service.call(alice, "TagResource", {"KeyId": other, "Tags": [tag]})
    assert len(service.call(alice, "ListResourceTags", {"KeyId": other})["Tags"]) == 1


def test_tags_on_a_key_pending_deletion_are_refused(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key})
    with pytest.raises(InvalidStateError):
        service.call(
            alice, "TagResource", {"KeyId": key, "Tags": [{"TagKey": "a", "TagValue": ""}]}
        )


# -- description and policy ------------------------------------------------------------------------


def test_update_key_description(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice, Description="old")["KeyId"]
    assert service.call(alice, "UpdateKeyDescription", {"KeyId": key, "Description": "new"}) == {}
    assert describe(service, alice, key)["Description"] == "new"
    service.call(alice, "UpdateKeyDescription", {"KeyId": key, "Description": "d" * 8192})
    assert describe(service, alice, key)["Description"] == "d" * 8192
    service.call(alice, "UpdateKeyDescription", {"KeyId": key, "Description": ""})
    assert describe(service, alice, key)["Description"] == ""
    with pytest.raises(ValidationError, match="description"):
        service.call(alice, "UpdateKeyDescription", {"KeyId": key, "Description": "d" * 8193})


def test_default_key_policy(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    response = service.call(alice, "GetKeyPolicy", {"KeyId": key})
    assert response["PolicyName"] == "default"
    policy = json.loads(response["Policy"])
    assert policy["Version"] == "2012-10-17"
    statement = policy["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{alice.tenant}:root"}
    assert statement["Action"] == "kms:*"
    assert service.call(alice, "GetKeyPolicy", {"KeyId": key, "PolicyName": "default"}) == response
    assert service.call(alice, "ListKeyPolicies", {"KeyId": key}) == {
        "PolicyNames": ["default"],
        "Truncated": False,
    }


def test_put_key_policy(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "root",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{alice.tenant}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    assert service.call(alice, "PutKeyPolicy", {"KeyId": key, "Policy": policy}) == {}
    assert service.call(alice, "GetKeyPolicy", {"KeyId": key})["Policy"] == policy
    with pytest.raises(NotFoundError):
        service.call(alice, "GetKeyPolicy", {"KeyId": key, "PolicyName": "other"})
    with pytest.raises(NotFoundError):
        service.call(alice, "PutKeyPolicy", {"KeyId": key, "Policy": policy, "PolicyName": "x"})
    created = create_key(service, alice, Policy=policy)["KeyId"]
    assert service.call(alice, "GetKeyPolicy", {"KeyId": created})["Policy"] == policy


@pytest.mark.parametrize(
    "create",
    [
        {},
        {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"},
        {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
        {"KeySpec": "ML_KEM_768", "KeyUsage": "ENCAPSULATE_DECAPSULATE"},
    ],
    ids=["symmetric", "rsa", "hmac", "ml-kem"],
)
def test_a_disabled_key_is_disabled_before_its_type_is_looked_at(
    sqlite_service: KeyService, create: dict[str, str]
) -> None:
    """AWS checks a key's state before its type: DisabledException, '<key-arn> is disabled.'."""
    caller = tenant_caller(sqlite_service, "order")
    meta = sqlite_service.call(caller, "CreateKey", create)["KeyMetadata"]
    sqlite_service.call(caller, "DisableKey", {"KeyId": meta["KeyId"]})
    exact = f"^{re.escape(meta['Arn'])} is disabled.$"
    for operation in ("RotateKeyOnDemand", "EnableKeyRotation", "DisableKeyRotation"):
        with pytest.raises(DisabledError, match=exact):
            sqlite_service.call(caller, operation, {"KeyId": meta["KeyId"]})
    with pytest.raises(DisabledError, match=exact):
        sqlite_service.call(caller, "GetPublicKey", {"KeyId": meta["KeyId"]})
    with pytest.raises(DisabledError, match=exact):
        sqlite_service.call(caller, "Encrypt", {"KeyId": meta["KeyId"], "Plaintext": b"x"})
    # Enabled again, the type decides: only symmetric keys rotate.
    sqlite_service.call(caller, "EnableKey", {"KeyId": meta["KeyId"]})
    if create:
        with pytest.raises(UnsupportedOperationError):
            sqlite_service.call(caller, "RotateKeyOnDemand", {"KeyId": meta["KeyId"]})
    else:
        sqlite_service.call(caller, "RotateKeyOnDemand", {"KeyId": meta["KeyId"]})


def test_import_operations_check_the_state_before_the_origin(sqlite_service: KeyService) -> None:
    caller = tenant_caller(sqlite_service, "order")
    meta = sqlite_service.call(caller, "CreateKey", {})["KeyMetadata"]  # origin AWS_KMS
    with pytest.raises(UnsupportedOperationError, match="origin"):
        sqlite_service.call(
            caller,
            "GetParametersForImport",
            {
                "KeyId": meta["KeyId"],
                "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                "WrappingKeySpec": "RSA_2048",
            },
        )
    sqlite_service.call(caller, "ScheduleKeyDeletion", {"KeyId": meta["KeyId"]})
    pending = f"^{re.escape(meta['Arn'])} is pending deletion.$"
    with pytest.raises(InvalidStateError, match=pending):
        sqlite_service.call(
            caller,
            "GetParametersForImport",
            {
                "KeyId": meta["KeyId"],
                "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                "WrappingKeySpec": "RSA_2048",
            },
        )
    with pytest.raises(InvalidStateError, match=pending):
        sqlite_service.call(
            caller,
            "ImportKeyMaterial",
            {
                "KeyId": meta["KeyId"],
                "ImportToken": b"t",
                "EncryptedKeyMaterial": b"m",
                "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
            },
        )
