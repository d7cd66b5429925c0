"""Tenancy: one tenant's keys, aliases and ciphertexts are invisible to another.

Alice owns a key with an alias, a description and tags. Bob (another tenant) tries to use
it every way a KeyId can be written: by id he finds nothing, by ARN he is denied (as AWS
denies a cross-account call without a policy), by alias he finds nothing. Alice's
ciphertexts are invalid for Bob. No message Bob receives names anything of Alice's that he
did not send himself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from strongroom.errors import (
    AccessDeniedError,
    InvalidCiphertextError,
    NotFoundError,
    StrongroomError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService
from strongroom.kms.records import KeyRecord, KeyVersionRecord

ALIAS = "alias/alice-payroll-secret-alias"
DESCRIPTION = "alice description: quarterly payroll"
TAG_VALUE = "alice-tag-value-confidential"


@dataclass
class AliceKey:
    key_id: str
    arn: str
    blob: bytes
    context: dict[str, str]


@pytest.fixture
def alice_key(service: KeyService, alice: Caller) -> AliceKey:
    meta = service.call(
        alice,
        "CreateKey",
        {"Description": DESCRIPTION, "Tags": [{"TagKey": "owner", "TagValue": TAG_VALUE}]},
    )["KeyMetadata"]
    service.call(alice, "CreateAlias", {"AliasName": ALIAS, "TargetKeyId": meta["KeyId"]})
    context = {"department": "alice-finance"}
    blob = service.call(
        alice,
        "Encrypt",
        {"KeyId": meta["KeyId"], "Plaintext": b"alice's salary", "EncryptionContext": context},
    )["CiphertextBlob"]
    return AliceKey(meta["KeyId"], meta["Arn"], blob, context)


def _bob_error(
    service: KeyService, bob: Caller, operation: str, request: dict[str, Any]
) -> StrongroomError:
    with pytest.raises(StrongroomError) as info:
        service.call(bob, operation, request)
    return info.value


def _assert_reveals_nothing(error: StrongroomError, alice: Caller, sent: str) -> None:
    message = str(error)
    for secret in (ALIAS, "alice-payroll", DESCRIPTION, TAG_VALUE, "alice-finance", "salary"):
        if secret not in sent:
            assert secret not in message, message
    if alice.tenant not in sent:
        assert alice.tenant not in message, message
    assert alice.principal_arn not in message, message


KEY_OPERATIONS: list[tuple[str, dict[str, Any]]] = [
    ("Encrypt", {"Plaintext": b"x"}),
    ("GenerateDataKey", {"KeySpec": "AES_256"}),
    ("GenerateDataKeyWithoutPlaintext", {"NumberOfBytes": 16}),
    ("DescribeKey", {}),
    ("DisableKey", {}),
    ("EnableKey", {}),
    ("ScheduleKeyDeletion", {"PendingWindowInDays": 7}),
    ("CancelKeyDeletion", {}),
    ("UpdateKeyDescription", {"Description": "bob was here"}),
    ("TagResource", {"Tags": [{"TagKey": "bob", "TagValue": "x"}]}),
    ("UntagResource", {"TagKeys": ["owner"]}),
    ("ListResourceTags", {}),
    ("EnableKeyRotation", {}),
    ("GetKeyRotationStatus", {}),
    ("RotateKeyOnDemand", {}),
    ("ListKeyRotations", {}),
    ("GetKeyPolicy", {}),
    ("PutKeyPolicy", {"Policy": '{"Version": "2012-10-17", "Statement": []}'}),
    ("ListAliases", {}),
]


@pytest.mark.parametrize(
    ("form", "expected"),
    [("id", NotFoundError), ("arn", AccessDeniedError), ("alias", NotFoundError)],
)
def test_bob_cannot_use_alices_key(
    service: KeyService,
    alice: Caller,
    bob: Caller,
    alice_key: AliceKey,
    form: str,
    expected: type[StrongroomError],
) -> None:
    ref = {"id": alice_key.key_id, "arn": alice_key.arn, "alias": ALIAS}[form]
    for operation, extra in KEY_OPERATIONS:
        error = _bob_error(service, bob, operation, {"KeyId": ref, **extra})
        assert type(error) is expected, (operation, error)
        _assert_reveals_nothing(error, alice, ref)
    cross_calls: list[tuple[str, dict[str, Any]]] = [
        ("ReEncrypt", {"CiphertextBlob": alice_key.blob, "DestinationKeyId": ref}),
    ]
    if form != "alias":  # an alias cannot be the target of an alias (ValidationError)
        cross_calls.append(("CreateAlias", {"AliasName": "alias/bobs", "TargetKeyId": ref}))
    for operation, request in cross_calls:
        error = _bob_error(service, bob, operation, request)
        assert isinstance(error, expected | InvalidCiphertextError), (operation, error)
        _assert_reveals_nothing(error, alice, ref)
    # Nothing Bob did changed Alice's key.
    meta = service.call(alice, "DescribeKey", {"KeyId": alice_key.key_id})["KeyMetadata"]
    assert (meta["KeyState"], meta["Description"]) == ("Enabled", DESCRIPTION)
    tags = service.call(alice, "ListResourceTags", {"KeyId": alice_key.key_id})["Tags"]
    assert tags == [{"TagKey": "owner", "TagValue": TAG_VALUE}]
    plain = service.call(
        alice, "Decrypt", {"CiphertextBlob": alice_key.blob, "EncryptionContext": alice_key.context}
    )
    assert plain["Plaintext"] == b"alice's salary"


def test_bob_cannot_use_alices_alias_arn(
    service: KeyService, alice: Caller, bob: Caller, alice_key: AliceKey
) -> None:
    alias_arn = f"arn:aws:kms:us-east-1:{alice.tenant}:{ALIAS}"
    error = _bob_error(service, bob, "Encrypt", {"KeyId": alias_arn, "Plaintext": b"x"})
    assert isinstance(error, AccessDeniedError)
    assert bob.principal_arn in str(error)
    _assert_reveals_nothing(error, alice, alias_arn)


@pytest.mark.parametrize("with_key_id", [False, True])
def test_alices_blob_is_invalid_for_bob(
    service: KeyService, alice: Caller, bob: Caller, alice_key: AliceKey, with_key_id: bool
) -> None:
    request: dict[str, Any] = {
        "CiphertextBlob": alice_key.blob,
        "EncryptionContext": alice_key.context,
    }
    if with_key_id:
        bobs_key = service.call(bob, "CreateKey", {})["KeyMetadata"]["KeyId"]
        request["KeyId"] = bobs_key
    error = _bob_error(service, bob, "Decrypt", request)
    assert type(error) is InvalidCiphertextError
    _assert_reveals_nothing(error, alice, "")
    assert alice_key.key_id not in str(error)
    if with_key_id:
        error = _bob_error(
            service,
            bob,
            "ReEncrypt",
            {
                "CiphertextBlob": alice_key.blob,
                "SourceEncryptionContext": alice_key.context,
                "DestinationKeyId": request["KeyId"],
            },
        )
        assert type(error) is InvalidCiphertextError


def test_same_key_id_and_material_in_bobs_tenant_still_cannot_open_alices_blob(
    service: KeyService, alice: Caller, bob: Caller, alice_key: AliceKey
) -> None:
    """The tenant is bound into every blob, not only implied by where the key is found.

    Bob's tenant gets a key with Alice's key id and Alice's very material (as a key id
    collision plus the same imported material would give); her blob still does not open.
    """
    raw = service.store.read(lambda tx: tx.get(alice.tenant, "key", alice_key.key_id))
    assert raw is not None
    alice_record = KeyRecord.from_bytes(raw)
    material = service.kernel.read(
        lambda tx: service.kernel.materials.material(tx, alice_record, 1)
    )
    bob_key = service.call(bob, "CreateKey", {})["KeyMetadata"]["KeyId"]
    bob_policy = service.call(bob, "GetKeyPolicy", {"KeyId": bob_key})["Policy"]
    planted = alice_record.replace(account_id=bob.tenant, description="", policy=bob_policy)
    version = KeyVersionRecord(
        key_id=alice_key.key_id,
        version=1,
        created_at=alice_record.creation_date,
        wrapped_material=service.kernel.materials.wrap_material(
            bob.tenant, alice_key.key_id, 1, material
        ),
    )

    def plant(tx: Any) -> None:
        tx.put(bob.tenant, "key", alice_key.key_id, planted.to_bytes())
        tx.put(bob.tenant, "keyver", f"{alice_key.key_id}/{1:010d}", version.to_bytes())

    service.store.write(plant)
    # The planted key works for Bob's own blobs...
    own = service.call(bob, "Encrypt", {"KeyId": alice_key.key_id, "Plaintext": b"bob"})
    assert (
        service.call(bob, "Decrypt", {"CiphertextBlob": own["CiphertextBlob"]})["Plaintext"]
        == b"bob"
    )
    # ...and Alice's blob, though it names that key id and version, is invalid for him.
    error = _bob_error(
        service,
        bob,
        "Decrypt",
        {"CiphertextBlob": alice_key.blob, "EncryptionContext": alice_key.context},
    )
    assert type(error) is InvalidCiphertextError


def test_listings_are_per_tenant(
    service: KeyService, alice: Caller, bob: Caller, alice_key: AliceKey
) -> None:
    bob_key = service.call(bob, "CreateKey", {})["KeyMetadata"]["KeyId"]
    assert [k["KeyId"] for k in service.call(bob, "ListKeys", {})["Keys"]] == [bob_key]
    assert [k["KeyId"] for k in service.call(alice, "ListKeys", {})["Keys"]] == [alice_key.key_id]
    assert service.call(bob, "ListAliases", {})["Aliases"] == []
    alice_aliases = service.call(alice, "ListAliases", {})["Aliases"]
    assert [a["AliasName"] for a in alice_aliases] == [ALIAS]


def test_bob_can_reuse_alices_alias_name(
    service: KeyService, alice: Caller, bob: Caller, alice_key: AliceKey
) -> None:
    bob_key = service.call(bob, "CreateKey", {})["KeyMetadata"]
    service.call(bob, "CreateAlias", {"AliasName": ALIAS, "TargetKeyId": bob_key["KeyId"]})
    response = service.call(bob, "Encrypt", {"KeyId": ALIAS, "Plaintext": b"bob"})
    assert response["KeyId"] == bob_key["Arn"]
    error = _bob_error(
        service,
        bob,
        "Decrypt",
        {"CiphertextBlob": alice_key.blob, "EncryptionContext": alice_key.context, "KeyId": ALIAS},
    )
    assert type(error) is InvalidCiphertextError
    alice_response = service.call(alice, "Encrypt", {"KeyId": ALIAS, "Plaintext": b"alice"})
    assert alice_response["KeyId"] == alice_key.arn


def test_bobs_deletion_maintenance_leaves_alice_alone(
    service: KeyService, alice: Caller, bob: Caller, alice_key: AliceKey, clock: Any
) -> None:
    bob_key = service.call(bob, "CreateKey", {})["KeyMetadata"]
    service.call(bob, "CreateAlias", {"AliasName": ALIAS, "TargetKeyId": bob_key["KeyId"]})
    service.call(bob, "ScheduleKeyDeletion", {"KeyId": bob_key["KeyId"], "PendingWindowInDays": 7})
    clock.advance(8 * 86400)
    assert service.run_maintenance()["deleted"] == [bob_key["Arn"]]
    plain = service.call(
        alice, "Decrypt", {"CiphertextBlob": alice_key.blob, "EncryptionContext": alice_key.context}
    )
    assert plain["Plaintext"] == b"alice's salary"
    assert [a["AliasName"] for a in service.call(alice, "ListAliases", {})["Aliases"]] == [ALIAS]


@pytest.mark.parametrize("name", ["root", "", "a/b", "x" * 65, "bad name"])
def test_reserved_and_invalid_user_names_are_refused(service: KeyService, name: str) -> None:
    tenant = service.create_tenant("names")
    with pytest.raises(ValidationError, match=r"reserved|not valid"):
        service.create_access_key(tenant.account_id, name)
    assert service.store.read(lambda tx: tx.scan(tenant.account_id, "principal")) == []
