"""Multi-Region keys with imported key material (origin EXTERNAL), as AWS KMS has them.

The same material is imported into the primary and into each replica on its own; a replica
is ``PendingImport`` until then, other material is refused, and each related key's material
is deleted and expires on its own.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from strongroom.errors import (
    IncorrectKeyMaterialError,
    InvalidStateError,
    UnsupportedOperationError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.testing.key_import import DAY, FOREVER, import_material
from strongroom.testing.service import tenant_caller

EAST, WEST, ASIA = "us-east-1", "eu-west-1", "ap-southeast-2"


def in_region(caller: Caller, region: str) -> Caller:
    return dataclasses.replace(caller, region=region)


def describe(service: KeyService, caller: Caller, key_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "DescribeKey", {"KeyId": key_id})["KeyMetadata"]
    return meta


def external_primary(service: KeyService, caller: Caller, material: bytes) -> str:
    """An EXTERNAL multi-Region primary key with ``material`` imported; its key id."""
    request = {"MultiRegion": True, "Origin": "EXTERNAL"}
    meta = service.call(caller, "CreateKey", request)["KeyMetadata"]
    assert (meta["KeyState"], meta["Origin"], meta["MultiRegion"]) == (
        "PendingImport",
        "EXTERNAL",
        True,
    )
    key_id: str = meta["KeyId"]
    import_material(service, caller, key_id, material)
    assert describe(service, caller, key_id)["KeyState"] == "Enabled"
    return key_id


def replicate(service: KeyService, caller: Caller, key_id: str, region: str) -> dict[str, Any]:
    request = {"KeyId": key_id, "ReplicaRegion": region}
    meta: dict[str, Any] = service.call(caller, "ReplicateKey", request)["ReplicaKeyMetadata"]
    return meta


@pytest.fixture
def east(sqlite_service: KeyService) -> Caller:
    return tenant_caller(sqlite_service, "alice", EAST)


def test_replica_takes_the_same_material_only(service: KeyService, alice: Caller) -> None:
    """Over every store and root: the whole flow a boto3 user goes through."""
    material = os.urandom(32)
    key_id = external_primary(service, alice, material)
    blob = service.call(alice, "Encrypt", {"KeyId": key_id, "Plaintext": b"east"})
    blob_ = blob["CiphertextBlob"]
    answer = replicate(service, alice, key_id, WEST)
    assert "CurrentKeyMaterialId" not in answer
    west = in_region(alice, WEST)
    replica = describe(service, west, key_id)
    assert (replica["KeyState"], replica["Origin"]) == ("PendingImport", "EXTERNAL")
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    with pytest.raises(InvalidStateError) as pending:
        service.call(west, "Decrypt", {"CiphertextBlob": blob_})
    assert pending.value.aws_type == "KMSInvalidStateException"
    with pytest.raises(IncorrectKeyMaterialError) as wrong:
        import_material(service, west, key_id, os.urandom(32))
    assert wrong.value.aws_type == "IncorrectKeyMaterialException"
    assert describe(service, west, key_id)["KeyState"] == "PendingImport"

    done = import_material(service, west, key_id, material)
    primary_meta = describe(service, alice, key_id)
    assert done["KeyMaterialId"] == primary_meta["CurrentKeyMaterialId"]
    replica = describe(service, west, key_id)
    assert replica["KeyState"] == "Enabled"
    assert replica["CurrentKeyMaterialId"] == primary_meta["CurrentKeyMaterialId"]
    out = service.call(west, "Decrypt", {"CiphertextBlob": blob_})
    assert out["Plaintext"] == b"east"
    encrypted = service.call(west, "Encrypt", {"KeyId": key_id, "Plaintext": b"west"})
    back = {"CiphertextBlob": encrypted["CiphertextBlob"]}
    assert service.call(alice, "Decrypt", back)["Plaintext"] == b"west"

    # deleting the replica's material leaves the primary whole, and the other way round
    service.call(west, "DeleteImportedKeyMaterial", {"KeyId": key_id})
    assert describe(service, west, key_id)["KeyState"] == "PendingImport"
    assert describe(service, alice, key_id)["KeyState"] == "Enabled"
    with pytest.raises(InvalidStateError):
        service.call(west, "Decrypt", {"CiphertextBlob": blob_})
    assert service.call(alice, "Decrypt", {"CiphertextBlob": blob_})["Plaintext"] == b"east"
    import_material(service, west, key_id, material)
    service.call(alice, "DeleteImportedKeyMaterial", {"KeyId": key_id})
    assert describe(service, alice, key_id)["KeyState"] == "PendingImport"
    assert service.call(west, "Decrypt", {"CiphertextBlob": blob_})["Plaintext"] == b"east"
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(service, alice, key_id, os.urandom(32))
    import_material(service, alice, key_id, material)
    assert service.call(alice, "Decrypt", back)["Plaintext"] == b"west"


def test_expiry_is_per_key(sqlite_service: KeyService, east: Caller, clock: ManualClock) -> None:
    svc = sqlite_service
    material = os.urandom(32)
    key_id = external_primary(svc, east, material)
    replicate(svc, east, key_id, WEST)
    west = in_region(east, WEST)
    import_material(
        svc,
        west,
        key_id,
        material,
        ExpirationModel="KEY_MATERIAL_EXPIRES",
        ValidTo=clock.now() + DAY,
    )
    replica = describe(svc, west, key_id)
    assert replica["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert describe(svc, east, key_id)["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    clock.advance(DAY + 1)
    assert describe(svc, west, key_id)["KeyState"] == "PendingImport"
    assert describe(svc, east, key_id)["KeyState"] == "Enabled"
    encrypted = svc.call(east, "Encrypt", {"KeyId": key_id, "Plaintext": b"still"})
    blob = {"CiphertextBlob": encrypted["CiphertextBlob"]}
    # maintenance deletes the replica's expired copy only
    svc.delete_due_keys()
    assert svc.call(east, "Decrypt", blob)["Plaintext"] == b"still"
    listed = svc.call(
        west, "ListKeyRotations", {"KeyId": key_id, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}
    )["Rotations"]
    assert [entry["ImportState"] for entry in listed] == ["PENDING_IMPORT"]
    import_material(svc, west, key_id, material)
    assert svc.call(west, "Decrypt", blob)["Plaintext"] == b"still"
    listed = svc.call(
        east, "ListKeyRotations", {"KeyId": key_id, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}
    )["Rotations"]
    assert [entry["ImportState"] for entry in listed] == ["IMPORTED"]


def test_replica_import_refusals(sqlite_service: KeyService, east: Caller) -> None:
    svc = sqlite_service
    material = os.urandom(32)
    key_id = external_primary(svc, east, material)
    replicate(svc, east, key_id, WEST)
    west = in_region(east, WEST)
    primary_id = describe(svc, east, key_id)["CurrentKeyMaterialId"]
    with pytest.raises(IncorrectKeyMaterialError):  # the id of other material
        import_material(svc, west, key_id, material, KeyMaterialId="0" * 64, **FOREVER)
    import_material(svc, west, key_id, material, KeyMaterialId=primary_id, **FOREVER)
    # no new material for multi-Region keys, in the primary nor in a replica
    for caller in (east, west):
        with pytest.raises(UnsupportedOperationError) as refused:
            import_material(
                svc, caller, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL", **FOREVER
            )
        assert "multi-Region" in str(refused.value)
    # re-importing the same material (to change its expiry) works in either
    import_material(svc, west, key_id, material, ImportType="EXISTING_KEY_MATERIAL", **FOREVER)
    import_material(svc, east, key_id, material, ImportType="EXISTING_KEY_MATERIAL", **FOREVER)
    assert describe(svc, west, key_id)["KeyState"] == "Enabled"


def test_second_replica_and_primary_move(
    sqlite_service: KeyService, east: Caller, clock: ManualClock
) -> None:
    svc = sqlite_service
    material = os.urandom(32)
    key_id = external_primary(svc, east, material)
    encrypted = svc.call(east, "Encrypt", {"KeyId": key_id, "Plaintext": b"x"})
    blob = {"CiphertextBlob": encrypted["CiphertextBlob"]}
    replicate(svc, east, key_id, WEST)
    replicate(svc, east, key_id, ASIA)
    west, asia = in_region(east, WEST), in_region(east, ASIA)
    import_material(svc, west, key_id, material)
    # the west replica's material is enough to recognise the material in Asia too
    svc.call(east, "DeleteImportedKeyMaterial", {"KeyId": key_id})
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(svc, asia, key_id, os.urandom(32))
    import_material(svc, asia, key_id, material)
    assert svc.call(asia, "Decrypt", blob)["Plaintext"] == b"x"
    import_material(svc, east, key_id, material)
    svc.call(east, "UpdatePrimaryRegion", {"KeyId": key_id, "PrimaryRegion": WEST})
    assert describe(svc, west, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == (
        "PRIMARY"
    )
    assert svc.call(west, "Decrypt", blob)["Plaintext"] == b"x"
    # deleting a replica takes its own material only
    svc.call(east, "ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": 7})
    clock.advance(8 * DAY)
    assert svc.delete_due_keys() == [f"arn:aws:kms:{EAST}:{east.tenant}:key/{key_id}"]
    assert svc.call(asia, "Decrypt", blob)["Plaintext"] == b"x"
    assert svc.call(west, "Decrypt", blob)["Plaintext"] == b"x"
    rows = svc.kernel.read(lambda tx: [name for name, _ in tx.scan(east.tenant, "keyver")])
    assert rows and all(f"@{EAST}/" not in name for name in rows)


def test_hmac_material_in_a_replica(sqlite_service: KeyService, east: Caller) -> None:
    svc = sqlite_service
    request = {
        "MultiRegion": True,
        "Origin": "EXTERNAL",
        "KeySpec": "HMAC_256",
        "KeyUsage": "GENERATE_VERIFY_MAC",
    }
    key_id = svc.call(east, "CreateKey", request)["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    import_material(svc, east, key_id, material)
    mac = {"KeyId": key_id, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"}
    tag = svc.call(east, "GenerateMac", mac)["Mac"]
    replicate(svc, east, key_id, WEST)
    west = in_region(east, WEST)
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(svc, west, key_id, os.urandom(32))
    import_material(svc, west, key_id, material)
    assert svc.call(west, "VerifyMac", {**mac, "Mac": tag})["MacValid"] is True
