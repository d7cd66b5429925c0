"""Multi-Region keys: primary and replicas, shared material, per-region everything else."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from strongroom.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    DisabledError,
    IncorrectKeyError,
    InvalidGrantTokenError,
    InvalidStateError,
    MalformedPolicyDocumentError,
    NotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.testing.service import tenant_caller

from .policy_support import policy_denying

DAY = 86400.0
EAST, WEST, ASIA = "us-east-1", "eu-west-1", "ap-southeast-2"


def in_region(caller: Caller, region: str) -> Caller:
    return dataclasses.replace(caller, region=region)


def primary(service: KeyService, caller: Caller, **request: Any) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "CreateKey", {"MultiRegion": True, **request})[
        "KeyMetadata"
    ]
    return meta


def replicate(
    service: KeyService, caller: Caller, key_id: str, region: str, **request: Any
) -> dict[str, Any]:
    return service.call(
        caller, "ReplicateKey", {"KeyId": key_id, "ReplicaRegion": region, **request}
    )


def describe(service: KeyService, caller: Caller, key_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "DescribeKey", {"KeyId": key_id})["KeyMetadata"]
    return meta


@pytest.fixture
def east(sqlite_service: KeyService) -> Caller:
    return tenant_caller(sqlite_service, "alice", EAST)


def test_primary_key_ids_and_metadata(sqlite_service: KeyService, east: Caller) -> None:
    meta = primary(sqlite_service, east, Description="p")
    assert re.fullmatch(r"mrk-[0-9a-f]{32}", meta["KeyId"])
    assert meta["MultiRegion"] is True
    assert meta["Arn"] == f"arn:aws:kms:{EAST}:{east.tenant}:key/{meta['KeyId']}"
    assert meta["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": {"Arn": meta["Arn"], "Region": EAST},
        "ReplicaKeys": [],
    }


def test_replica_shares_material_and_decrypts_across_regions(
    service: KeyService, alice: Caller
) -> None:
    """Over every store and root: a ciphertext of one region opens in the other."""
    meta = primary(service, alice)
    key_id = meta["KeyId"]
    answer = replicate(
        service,
        alice,
        key_id,
        WEST,
        Description="replica",
        Tags=[{"TagKey": "team", "TagValue": "eu"}],
    )
    replica_meta = answer["ReplicaKeyMetadata"]
    west = in_region(alice, WEST)
    replica_arn = f"arn:aws:kms:{WEST}:{alice.tenant}:key/{key_id}"
    assert replica_meta["Arn"] == replica_arn
    assert replica_meta["KeyState"] == "Creating"  # AWS's answer; ready at once here
    assert answer["ReplicaTags"] == [{"TagKey": "team", "TagValue": "eu"}]
    assert json.loads(answer["ReplicaPolicy"])["Statement"]
    described = describe(service, west, key_id)
    assert described["KeyState"] == "Enabled"
    assert described["Description"] == "replica"
    assert described["CurrentKeyMaterialId"] == meta["CurrentKeyMaterialId"]
    assert described["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "REPLICA",
        "PrimaryKey": {"Arn": meta["Arn"], "Region": alice.region},
        "ReplicaKeys": [{"Arn": replica_arn, "Region": WEST}],
    }
    assert describe(service, alice, key_id)["MultiRegionConfiguration"]["ReplicaKeys"] == [
        {"Arn": replica_arn, "Region": WEST}
    ]
    blob = service.call(alice, "Encrypt", {"KeyId": key_id, "Plaintext": b"east"})
    out = service.call(west, "Decrypt", {"CiphertextBlob": blob["CiphertextBlob"]})
    assert (out["Plaintext"], out["KeyId"]) == (b"east", replica_arn)
    back = service.call(west, "Encrypt", {"KeyId": replica_arn, "Plaintext": b"west"})
    out = service.call(alice, "Decrypt", {"CiphertextBlob": back["CiphertextBlob"]})
    assert (out["Plaintext"], out["KeyId"]) == (b"west", meta["Arn"])
    # the key of one region is invisible from another that has no replica
    asia = in_region(alice, ASIA)
    with pytest.raises(NotFoundError):
        describe(service, asia, key_id)
    with pytest.raises(NotFoundError):
        describe(service, alice, replica_arn)  # another region's ARN names nothing here


def test_replicate_refusals(sqlite_service: KeyService, east: Caller) -> None:
    svc = sqlite_service
    single = svc.call(east, "CreateKey", {})["KeyMetadata"]["KeyId"]
    with pytest.raises(UnsupportedOperationError, match="not a multi-Region key"):
        replicate(svc, east, single, WEST)
    key_id = primary(svc, east)["KeyId"]
    replicate(svc, east, key_id, WEST)
    with pytest.raises(AlreadyExistsError):
        replicate(svc, east, key_id, WEST)
    with pytest.raises(AlreadyExistsError):
        replicate(svc, east, key_id, EAST)
    with pytest.raises(UnsupportedOperationError, match="replica key"):
        replicate(svc, in_region(east, WEST), key_id, ASIA)
    with pytest.raises(ValidationError):
        replicate(svc, east, key_id, "Not A Region")
    svc.call(east, "DisableKey", {"KeyId": key_id})
    with pytest.raises(DisabledError):
        replicate(svc, east, key_id, ASIA)


def test_replica_policy_lockout_and_permission(sqlite_service: KeyService, east: Caller) -> None:
    svc = sqlite_service
    bob = tenant_caller(svc, "bob", EAST)
    other = dataclasses.replace(
        east, principal_arn=f"arn:aws:iam::{east.tenant}:user/other", is_admin=False
    )
    deny_replicate = policy_denying(east.tenant, "kms:ReplicateKey", {"AWS": other.principal_arn})
    key_id = primary(svc, east, Policy=deny_replicate)["KeyId"]
    with pytest.raises(AccessDeniedError, match="kms:ReplicateKey"):
        replicate(svc, other, key_id, WEST)
    with pytest.raises((AccessDeniedError, NotFoundError)):
        replicate(svc, bob, f"arn:aws:kms:{EAST}:{east.tenant}:key/{key_id}", WEST)
    lockout = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    with pytest.raises(MalformedPolicyDocumentError):
        replicate(svc, east, key_id, WEST, Policy=lockout)
    answer = replicate(svc, east, key_id, WEST, Policy=lockout, BypassPolicyLockoutSafetyCheck=True)
    assert answer["ReplicaPolicy"] == lockout
    west = in_region(east, WEST)
    with pytest.raises(AccessDeniedError):  # the replica's own policy, not the primary's
        svc.call(west, "Encrypt", {"KeyId": key_id, "Plaintext": b"x"})


def test_rotation_reaches_replicas(
    sqlite_service: KeyService, east: Caller, clock: ManualClock
) -> None:
    svc = sqlite_service
    key_id = primary(svc, east)["KeyId"]
    replicate(svc, east, key_id, WEST)
    west = in_region(east, WEST)
    old = svc.call(west, "Encrypt", {"KeyId": key_id, "Plaintext": b"v1"})["CiphertextBlob"]
    with pytest.raises(UnsupportedOperationError, match="replica"):
        svc.call(west, "RotateKeyOnDemand", {"KeyId": key_id})
    with pytest.raises(UnsupportedOperationError, match="replica"):
        svc.call(west, "EnableKeyRotation", {"KeyId": key_id})
    svc.call(east, "RotateKeyOnDemand", {"KeyId": key_id})
    rotations = svc.call(west, "ListKeyRotations", {"KeyId": key_id})["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"]
    new = svc.call(west, "Encrypt", {"KeyId": key_id, "Plaintext": b"v2"})["CiphertextBlob"]
    east_meta, west_meta = describe(svc, east, key_id), describe(svc, west, key_id)
    assert east_meta["CurrentKeyMaterialId"] == west_meta["CurrentKeyMaterialId"]
    assert east_meta["CurrentKeyMaterialId"] == rotations[0]["KeyMaterialId"]
    for blob, plain in ((old, b"v1"), (new, b"v2")):
        assert svc.call(east, "Decrypt", {"CiphertextBlob": blob})["Plaintext"] == plain
    # automatic rotation: set on the primary, shown and done for every related key
    svc.call(east, "EnableKeyRotation", {"KeyId": key_id, "RotationPeriodInDays": 90})
    status = svc.call(west, "GetKeyRotationStatus", {"KeyId": key_id})
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 90)
    clock.advance(91 * DAY)
    rotated = svc.rotate_due_keys()
    assert rotated == [f"arn:aws:kms:{EAST}:{east.tenant}:key/{key_id}"]
    rotations = svc.call(west, "ListKeyRotations", {"KeyId": key_id})["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND", "AUTOMATIC"]
    newest = svc.call(west, "Encrypt", {"KeyId": key_id, "Plaintext": b"v3"})["CiphertextBlob"]
    assert svc.call(east, "Decrypt", {"CiphertextBlob": newest})["Plaintext"] == b"v3"


def test_aliases_tags_and_grants_are_per_region(sqlite_service: KeyService, east: Caller) -> None:
    svc = sqlite_service
    west = in_region(east, WEST)
    key_id = primary(svc, east)["KeyId"]
    replicate(svc, east, key_id, WEST)
    single_west = svc.call(west, "CreateKey", {})["KeyMetadata"]["KeyId"]
    svc.call(east, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": key_id})
    svc.call(west, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": single_west})
    assert describe(svc, east, "alias/app")["KeyId"] == key_id
    assert describe(svc, west, "alias/app")["KeyId"] == single_west
    svc.call(west, "CreateAlias", {"AliasName": "alias/shared", "TargetKeyId": key_id})
    with pytest.raises(NotFoundError):
        describe(svc, east, "alias/shared")
    west_aliases = svc.call(west, "ListAliases", {"KeyId": key_id})["Aliases"]
    assert [a["AliasName"] for a in west_aliases] == ["alias/shared"]
    svc.call(west, "TagResource", {"KeyId": key_id, "Tags": [{"TagKey": "k", "TagValue": "w"}]})
    assert svc.call(east, "ListResourceTags", {"KeyId": key_id})["Tags"] == []
    svc.call(west, "UpdateKeyDescription", {"KeyId": key_id, "Description": "west only"})
    assert describe(svc, east, key_id)["Description"] == ""
    grant = svc.call(
        west,
        "CreateGrant",
        {"KeyId": key_id, "GranteePrincipal": west.principal_arn, "Operations": ["Decrypt"]},
    )
    assert len(svc.call(west, "ListGrants", {"KeyId": key_id})["Grants"]) == 1
    assert svc.call(east, "ListGrants", {"KeyId": key_id})["Grants"] == []
    with pytest.raises(InvalidGrantTokenError):
        svc.call(east, "RetireGrant", {"GrantToken": grant["GrantToken"]})
    svc.call(west, "RevokeGrant", {"KeyId": key_id, "GrantId": grant["GrantId"]})
    svc.call(west, "DisableKey", {"KeyId": key_id})  # key state is each key's own
    assert describe(svc, east, key_id)["KeyState"] == "Enabled"
    east_keys = [k["KeyArn"] for k in svc.call(east, "ListKeys", {})["Keys"]]
    west_keys = [k["KeyArn"] for k in svc.call(west, "ListKeys", {})["Keys"]]
    assert f"arn:aws:kms:{EAST}:{east.tenant}:key/{key_id}" in east_keys
    assert f"arn:aws:kms:{WEST}:{east.tenant}:key/{key_id}" in west_keys
    assert all(f":{WEST}:" in arn for arn in west_keys)
    blob = svc.call(east, "Encrypt", {"KeyId": key_id, "Plaintext": b"x"})["CiphertextBlob"]
    with pytest.raises(IncorrectKeyError):
        svc.call(west, "Decrypt", {"CiphertextBlob": blob, "KeyId": single_west})


def test_deletion_waits_for_replicas(
    sqlite_service: KeyService, east: Caller, clock: ManualClock
) -> None:
    svc = sqlite_service
    west, asia = in_region(east, WEST), in_region(east, ASIA)
    key_id = primary(svc, east)["KeyId"]
    replicate(svc, east, key_id, WEST)
    replicate(svc, east, key_id, ASIA)
    blob = svc.call(west, "Encrypt", {"KeyId": key_id, "Plaintext": b"keep"})["CiphertextBlob"]
    answer = svc.call(east, "ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": 7})
    assert answer["KeyState"] == "PendingReplicaDeletion"
    assert "DeletionDate" not in answer and answer["PendingWindowInDays"] == 7
    meta = describe(svc, east, key_id)
    assert meta["KeyState"] == "PendingReplicaDeletion"
    assert meta["PendingDeletionWindowInDays"] == 7 and "DeletionDate" not in meta
    with pytest.raises(InvalidStateError, match="pending replica deletion"):
        svc.call(east, "Encrypt", {"KeyId": key_id, "Plaintext": b"x"})
    svc.call(west, "ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": 7})
    svc.call(asia, "ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": 30})
    clock.advance(8 * DAY)
    assert svc.delete_due_keys() == [f"arn:aws:kms:{WEST}:{east.tenant}:key/{key_id}"]
    with pytest.raises(NotFoundError):
        describe(svc, west, key_id)
    assert describe(svc, east, key_id)["KeyState"] == "PendingReplicaDeletion"
    # the last replica's deletion is cancelled: it still decrypts the shared material
    svc.call(asia, "CancelKeyDeletion", {"KeyId": key_id})
    svc.call(asia, "EnableKey", {"KeyId": key_id})
    assert svc.call(asia, "Decrypt", {"CiphertextBlob": blob})["Plaintext"] == b"keep"
    svc.call(asia, "ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": 7})
    clock.advance(8 * DAY)
    svc.delete_due_keys()
    meta = describe(svc, east, key_id)  # the primary's own window starts now
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["DeletionDate"] == pytest.approx(clock.now() + 7 * DAY)
    assert meta["MultiRegionConfiguration"]["ReplicaKeys"] == []
    clock.advance(8 * DAY)
    svc.delete_due_keys()
    with pytest.raises(NotFoundError):
        describe(svc, east, key_id)
    assert svc.store.read(lambda tx: tx.scan(east.tenant, "keyver", key_id)) == []


def test_cancel_primary_replica_deletion(sqlite_service: KeyService, east: Caller) -> None:
    svc = sqlite_service
    key_id = primary(svc, east)["KeyId"]
    replicate(svc, east, key_id, WEST)
    svc.call(east, "ScheduleKeyDeletion", {"KeyId": key_id})
    svc.call(east, "CancelKeyDeletion", {"KeyId": key_id})
    meta = describe(svc, east, key_id)
    assert meta["KeyState"] == "Disabled" and "PendingDeletionWindowInDays" not in meta


def test_update_primary_region(sqlite_service: KeyService, east: Caller) -> None:
    svc = sqlite_service
    west, asia = in_region(east, WEST), in_region(east, ASIA)
    key_id = primary(svc, east)["KeyId"]
    replicate(svc, east, key_id, WEST)
    replicate(svc, east, key_id, ASIA)
    with pytest.raises(NotFoundError):
        svc.call(east, "UpdatePrimaryRegion", {"KeyId": key_id, "PrimaryRegion": "us-west-2"})
    with pytest.raises(UnsupportedOperationError, match="replica"):
        svc.call(west, "UpdatePrimaryRegion", {"KeyId": key_id, "PrimaryRegion": ASIA})
    svc.call(west, "DisableKey", {"KeyId": key_id})
    with pytest.raises(DisabledError):
        svc.call(east, "UpdatePrimaryRegion", {"KeyId": key_id, "PrimaryRegion": WEST})
    svc.call(west, "EnableKey", {"KeyId": key_id})
    assert svc.call(east, "UpdatePrimaryRegion", {"KeyId": key_id, "PrimaryRegion": WEST}) == {}
    west_arn = f"arn:aws:kms:{WEST}:{east.tenant}:key/{key_id}"
    for caller in (east, west, asia):
        config = describe(svc, caller, key_id)["MultiRegionConfiguration"]
        assert config["PrimaryKey"] == {"Arn": west_arn, "Region": WEST}
        assert config["MultiRegionKeyType"] == ("PRIMARY" if caller is west else "REPLICA")
        assert sorted(r["Region"] for r in config["ReplicaKeys"]) == [ASIA, EAST]
    # the old primary is a replica now: it cannot rotate or be replicated; the new one can
    with pytest.raises(UnsupportedOperationError):
        svc.call(east, "RotateKeyOnDemand", {"KeyId": key_id})
    svc.call(west, "RotateKeyOnDemand", {"KeyId": key_id})
    replicate(svc, west, key_id, "us-west-2")
    # the old primary, a replica, can be deleted before the new one
    svc.call(east, "ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": 7})
    assert describe(svc, east, key_id)["KeyState"] == "PendingDeletion"


@pytest.mark.parametrize(
    ("spec", "usage"),
    [
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("RSA_2048", "ENCRYPT_DECRYPT"),
    ],
)
def test_hmac_and_asymmetric_replicas(
    sqlite_service: KeyService, east: Caller, spec: str, usage: str
) -> None:
    svc = sqlite_service
    west = in_region(east, WEST)
    key_id = primary(svc, east, KeySpec=spec, KeyUsage=usage)["KeyId"]
    replica = replicate(svc, east, key_id, WEST)["ReplicaKeyMetadata"]
    assert (replica["KeySpec"], replica["KeyUsage"]) == (spec, usage)
    if usage == "GENERATE_VERIFY_MAC":
        mac = svc.call(
            east, "GenerateMac", {"KeyId": key_id, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"}
        )["Mac"]
        verified = svc.call(
            west,
            "VerifyMac",
            {"KeyId": key_id, "Message": b"m", "Mac": mac, "MacAlgorithm": "HMAC_SHA_256"},
        )
        assert verified["MacValid"] is True
    elif usage == "SIGN_VERIFY":
        assert (
            svc.call(east, "GetPublicKey", {"KeyId": key_id})["PublicKey"]
            == svc.call(west, "GetPublicKey", {"KeyId": key_id})["PublicKey"]
        )
        signature = svc.call(
            west,
            "Sign",
            {"KeyId": key_id, "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"},
        )["Signature"]
        assert svc.call(
            east,
            "Verify",
            {
                "KeyId": key_id,
                "Message": b"m",
                "Signature": signature,
                "SigningAlgorithm": "ECDSA_SHA_256",
            },
        )["SignatureValid"]
    else:
        blob = svc.call(
            east,
            "Encrypt",
            {"KeyId": key_id, "Plaintext": b"rsa", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
        )["CiphertextBlob"]
        out = svc.call(
            west,
            "Decrypt",
            {"KeyId": key_id, "CiphertextBlob": blob, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
        )
        assert out["Plaintext"] == b"rsa"


def test_single_region_keys_are_unchanged_rows(sqlite_service: KeyService, east: Caller) -> None:
    """Existing stores: a single-Region key's row is still named by its key id alone."""
    svc = sqlite_service
    key_id = svc.call(east, "CreateKey", {})["KeyMetadata"]["KeyId"]
    mrk = primary(svc, east)["KeyId"]
    replicate(svc, east, mrk, WEST)
    names = [name for name, _ in svc.store.read(lambda tx: tx.scan(east.tenant, "key"))]
    assert sorted(names) == sorted([key_id, f"{mrk}@{EAST}", f"{mrk}@{WEST}"])
    versions = [n for n, _ in svc.store.read(lambda tx: tx.scan(east.tenant, "keyver", mrk))]
    assert versions == [f"{mrk}/0000000001"]  # one material, shared by both keys


def test_update_primary_region_needs_both_policies(
    sqlite_service: KeyService, east: Caller
) -> None:
    svc = sqlite_service
    other = dataclasses.replace(
        east, principal_arn=f"arn:aws:iam::{east.tenant}:user/other", is_admin=False
    )
    key_id = primary(svc, east)["KeyId"]
    deny = policy_denying(east.tenant, "kms:UpdatePrimaryRegion", {"AWS": other.principal_arn})
    replicate(svc, east, key_id, WEST, Policy=deny)
    with pytest.raises(
        AccessDeniedError, match=f"kms:UpdatePrimaryRegion on resource: arn:aws:kms:{WEST}"
    ):
        svc.call(other, "UpdatePrimaryRegion", {"KeyId": key_id, "PrimaryRegion": WEST})
    config = describe(svc, east, key_id)["MultiRegionConfiguration"]
    assert config["MultiRegionKeyType"] == "PRIMARY"  # nothing changed
    svc.call(east, "UpdatePrimaryRegion", {"KeyId": key_id, "PrimaryRegion": WEST})
    assert (
        describe(svc, east, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    )
