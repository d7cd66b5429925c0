"""Rotation of keys with imported material: new material, RotateKeyOnDemand, several materials.

As AWS KMS does it: ``ImportKeyMaterial`` with ``ImportType=NEW_KEY_MATERIAL`` adds material
pending rotation; ``RotateKeyOnDemand`` makes it current; every bound material must stay
imported for the key to be usable.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from strongroom.crypto.blob import open_blob
from strongroom.errors import (
    IncorrectKeyMaterialError,
    InvalidStateError,
    NotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.kms.records import KeyRecord, KeyVersionRecord, version_name
from strongroom.testing.key_import import (
    FOREVER,
    create_external,
    decrypt,
    describe,
    encrypt,
    import_material,
)
from strongroom.testing.service import tenant_caller

NEW = {"ImportType": "NEW_KEY_MATERIAL"}
EXISTING = {"ImportType": "EXISTING_KEY_MATERIAL"}


@pytest.fixture
def solo(sqlite_service: KeyService) -> Caller:
    """A caller on the SQLite-only service."""
    return tenant_caller(sqlite_service, "solo")


def rotations(service: KeyService, caller: Caller, key: str, every: bool = True) -> list[Any]:
    request: dict[str, Any] = {"KeyId": key}
    if every:
        request["IncludeKeyMaterial"] = "ALL_KEY_MATERIAL"
    listed: list[Any] = service.call(caller, "ListKeyRotations", request)["Rotations"]
    return listed


def states(service: KeyService, caller: Caller, key: str) -> list[tuple[str, str, str]]:
    """(KeyMaterialId, KeyMaterialState, ImportState) of every material, oldest first."""
    return [
        (r["KeyMaterialId"], r["KeyMaterialState"], r["ImportState"])
        for r in rotations(service, caller, key)
    ]


def decrypted_with(service: KeyService, caller: Caller, blob: bytes) -> str:
    reply = service.call(caller, "Decrypt", {"CiphertextBlob": blob})
    return str(reply["KeyMaterialId"])


def test_new_material_rotates_in_on_demand(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    meta = create_external(service, alice)
    key = meta["KeyId"]
    first, second = os.urandom(32), os.urandom(32)
    id1 = import_material(service, alice, key, first, KeyMaterialDescription="first", **FOREVER)[
        "KeyMaterialId"
    ]
    old_blob = encrypt(service, alice, key, b"before")
    clock.advance(60)
    id2 = import_material(
        service, alice, key, second, KeyMaterialDescription="second", **NEW, **FOREVER
    )["KeyMaterialId"]
    assert id2 != id1
    # pending material is listed with every material, not as a rotation, and not used yet
    assert states(service, alice, key) == [
        (id1, "CURRENT", "IMPORTED"),
        (id2, "PENDING_ROTATION", "IMPORTED"),
    ]
    assert rotations(service, alice, key, every=False) == []
    assert describe(service, alice, key)["CurrentKeyMaterialId"] == id1
    assert decrypted_with(service, alice, encrypt(service, alice, key)) == id1

    clock.advance(60)
    assert service.call(alice, "RotateKeyOnDemand", {"KeyId": key}) == {"KeyId": meta["Arn"]}
    assert describe(service, alice, key)["CurrentKeyMaterialId"] == id2
    new_blob = encrypt(service, alice, key, b"after")
    # the new blob is under the second material: it opens offline with it, not the first
    assert open_blob(second, alice.tenant, new_blob) == b"after"
    with pytest.raises(Exception):  # noqa: B017 - any failure: the wrong key never opens it
        open_blob(first, alice.tenant, new_blob)
    assert decrypted_with(service, alice, new_blob) == id2
    assert decrypt(service, alice, old_blob) == b"before"
    assert decrypted_with(service, alice, old_blob) == id1

    (rotation,) = rotations(service, alice, key, every=False)
    assert rotation == {
        "KeyId": key,
        "KeyMaterialId": id2,
        "KeyMaterialState": "CURRENT",
        "ImportState": "IMPORTED",
        "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        "KeyMaterialDescription": "second",
        "RotationDate": clock.now(),
        "RotationType": "ON_DEMAND",
    }
    assert states(service, alice, key)[0] == (id1, "NON_CURRENT", "IMPORTED")
    assert rotations(service, alice, key)[0]["KeyMaterialDescription"] == "first"
    assert (
        service.call(alice, "GetKeyRotationStatus", {"KeyId": key})["KeyRotationEnabled"] is False
    )
    # a rotation needs new material each time
    with pytest.raises(InvalidStateError, match="pending rotation"):
        service.call(alice, "RotateKeyOnDemand", {"KeyId": key})


def test_new_material_refusals(sqlite_service: KeyService, solo: Caller) -> None:
    service, caller = sqlite_service, solo
    key = create_external(service, caller)["KeyId"]
    material = os.urandom(32)
    with pytest.raises(InvalidStateError):  # nothing imported yet: PendingImport
        service.call(caller, "RotateKeyOnDemand", {"KeyId": key})
    first_id = import_material(service, caller, key, material, **NEW, **FOREVER)["KeyMaterialId"]
    with pytest.raises(InvalidStateError, match="no imported key material pending rotation"):
        service.call(caller, "RotateKeyOnDemand", {"KeyId": key})
    with pytest.raises(IncorrectKeyMaterialError, match="already associated"):
        import_material(service, caller, key, material, **NEW, **FOREVER)
    with pytest.raises(ValidationError, match="KeyMaterialId"):
        import_material(
            service, caller, key, os.urandom(32), KeyMaterialId=first_id, **NEW, **FOREVER
        )
    pending = os.urandom(32)
    import_material(service, caller, key, pending, **NEW, **FOREVER)
    with pytest.raises(InvalidStateError, match="already pending rotation"):
        import_material(service, caller, key, os.urandom(32), **NEW, **FOREVER)
    # the pending material may be imported again (to change its expiry), as existing material
    import_material(service, caller, key, pending, **EXISTING, **FOREVER)
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(service, caller, key, os.urandom(32), **EXISTING, **FOREVER)
    # only symmetric encryption keys take new material
    hmac_key = create_external(service, caller, "HMAC_256", "GENERATE_VERIFY_MAC")["KeyId"]
    import_material(service, caller, hmac_key, os.urandom(32))
    with pytest.raises(UnsupportedOperationError, match="only symmetric encryption keys"):
        import_material(service, caller, hmac_key, os.urandom(32), **NEW, **FOREVER)
    with pytest.raises(UnsupportedOperationError):
        service.call(caller, "RotateKeyOnDemand", {"KeyId": hmac_key})
    with pytest.raises(UnsupportedOperationError):  # automatic rotation: generated keys only
        service.call(caller, "EnableKeyRotation", {"KeyId": key})


def test_pending_material_can_be_deleted_and_replaced(
    sqlite_service: KeyService, solo: Caller
) -> None:
    service, caller = sqlite_service, solo
    key = create_external(service, caller)["KeyId"]
    id1 = import_material(service, caller, key, os.urandom(32))["KeyMaterialId"]
    id2 = import_material(service, caller, key, os.urandom(32), **NEW, **FOREVER)["KeyMaterialId"]
    deleted = service.call(
        caller, "DeleteImportedKeyMaterial", {"KeyId": key, "KeyMaterialId": id2}
    )
    assert deleted["KeyMaterialId"] == id2
    # never bound: forgotten entirely, the key stays usable
    assert describe(service, caller, key)["KeyState"] == "Enabled"
    assert states(service, caller, key) == [(id1, "CURRENT", "IMPORTED")]
    id3 = import_material(service, caller, key, os.urandom(32), **NEW, **FOREVER)["KeyMaterialId"]
    service.call(caller, "RotateKeyOnDemand", {"KeyId": key})
    assert describe(service, caller, key)["CurrentKeyMaterialId"] == id3
    with pytest.raises(NotFoundError):
        service.call(caller, "DeleteImportedKeyMaterial", {"KeyId": key, "KeyMaterialId": id2})


def test_every_bound_material_must_be_imported(sqlite_service: KeyService, solo: Caller) -> None:
    service, caller = sqlite_service, solo
    key = create_external(service, caller)["KeyId"]
    first, second = os.urandom(32), os.urandom(32)
    id1 = import_material(service, caller, key, first)["KeyMaterialId"]
    old_blob = encrypt(service, caller, key, b"old")
    id2 = import_material(service, caller, key, second, **NEW, **FOREVER)["KeyMaterialId"]
    service.call(caller, "RotateKeyOnDemand", {"KeyId": key})
    new_blob = encrypt(service, caller, key, b"new")

    # deleting the old, non-current material makes the whole key unusable
    service.call(caller, "DeleteImportedKeyMaterial", {"KeyId": key, "KeyMaterialId": id1})
    meta = describe(service, caller, key)
    assert meta["KeyState"] == "PendingImport"
    assert states(service, caller, key) == [
        (id1, "NON_CURRENT", "PENDING_IMPORT"),
        (id2, "CURRENT", "IMPORTED"),
    ]
    for blob in (old_blob, new_blob):
        with pytest.raises(InvalidStateError):
            decrypt(service, caller, blob)
    # the current material cannot stand in for the deleted one
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(service, caller, key, os.urandom(32))
    again = import_material(service, caller, key, first)  # no ImportType: existing material
    assert again["KeyMaterialId"] == id1
    assert describe(service, caller, key)["KeyState"] == "Enabled"
    assert describe(service, caller, key)["CurrentKeyMaterialId"] == id2
    assert decrypt(service, caller, old_blob) == b"old"
    assert decrypt(service, caller, new_blob) == b"new"

    # without KeyMaterialId, DeleteImportedKeyMaterial deletes the current material
    deleted = service.call(caller, "DeleteImportedKeyMaterial", {"KeyId": key})
    assert deleted["KeyMaterialId"] == id2
    assert describe(service, caller, key)["KeyState"] == "PendingImport"
    import_material(service, caller, key, second, KeyMaterialId=id2, **FOREVER)
    assert describe(service, caller, key)["KeyState"] == "Enabled"


def test_each_material_expires_on_its_own(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    key = create_external(service, alice)["KeyId"]
    first, second, third = os.urandom(32), os.urandom(32), os.urandom(32)
    soon: dict[str, Any] = {
        "ExpirationModel": "KEY_MATERIAL_EXPIRES",
        "ValidTo": clock.now() + 3600,
    }
    id1 = import_material(service, alice, key, first, **soon)["KeyMaterialId"]
    blob = encrypt(service, alice, key, b"first")
    later: dict[str, Any] = {
        "ExpirationModel": "KEY_MATERIAL_EXPIRES",
        "ValidTo": clock.now() + 7200,
    }
    import_material(service, alice, key, second, **NEW, **later)
    service.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    meta = describe(service, alice, key)
    # DescribeKey shows the current material's expiry
    assert (meta["ValidTo"], meta["ExpirationModel"]) == (later["ValidTo"], "KEY_MATERIAL_EXPIRES")
    listed = rotations(service, alice, key)
    assert [r["ValidTo"] for r in listed] == [soon["ValidTo"], later["ValidTo"]]
    # material pending rotation that expires is forgotten; it never bound the key
    import_material(service, alice, key, third, **NEW, **soon)

    clock.advance(3600)  # the first (non-current) material expires: the key is unusable
    assert describe(service, alice, key)["KeyState"] == "PendingImport"
    with pytest.raises(InvalidStateError):
        encrypt(service, alice, key)
    with pytest.raises(InvalidStateError, match="pending import"):  # before maintenance too
        service.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    service.run_maintenance()
    assert states(service, alice, key) == [
        (id1, "NON_CURRENT", "PENDING_IMPORT"),
        (states(service, alice, key)[1][0], "CURRENT", "IMPORTED"),
    ]
    row = service.store.read(lambda tx: tx.get(alice.tenant, "keyver", version_name(key, 1)))
    assert row is not None and KeyVersionRecord.from_bytes(row).wrapped_material == b""
    import_material(service, alice, key, first, **FOREVER)
    assert describe(service, alice, key)["KeyState"] == "Enabled"
    assert decrypt(service, alice, blob) == b"first"
    with pytest.raises(InvalidStateError, match="no imported key material pending rotation"):
        service.call(alice, "RotateKeyOnDemand", {"KeyId": key})


def test_a_key_stored_before_materials_had_their_own_expiry_still_expires(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    key = create_external(service, alice)["KeyId"]
    valid_to = clock.now() + 3600
    import_material(
        service,
        alice,
        key,
        os.urandom(32),
        ExpirationModel="KEY_MATERIAL_EXPIRES",
        ValidTo=valid_to,
    )

    def as_before(tx: Any) -> None:  # the expiry only on the key, as earlier releases kept it
        name = version_name(key, 1)
        row = KeyVersionRecord.from_bytes(tx.get(alice.tenant, "keyver", name))
        tx.put(
            alice.tenant,
            "keyver",
            name,
            row.replace(valid_to=None, expiration_model=None).to_bytes(),
        )
        record = KeyRecord.from_bytes(tx.get(alice.tenant, "key", key))
        tx.put(alice.tenant, "key", key, record.replace(materials_valid_to=None).to_bytes())

    service.store.write(as_before)
    clock.advance(3600)
    assert describe(service, alice, key)["KeyState"] == "PendingImport"
    service.run_maintenance()
    row = service.store.read(lambda tx: tx.get(alice.tenant, "keyver", version_name(key, 1)))
    assert row is not None and KeyVersionRecord.from_bytes(row).wrapped_material == b""
