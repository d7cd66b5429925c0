"""User keys (crypto-shredding): per-user keys under a KMS key, over every store."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from strongroom.crypto import BlobHeader, BlobKind, parse_header
from strongroom.crypto.wrap import key_identity
from strongroom.errors import (
    AccessDeniedError,
    DisabledError,
    InvalidCiphertextError,
    InvalidKeyUsageError,
    NotFoundError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.kms.records import KeyRecord, UserKeyRecord
from strongroom.kms.userkey_rows import check_user_id, user_identities
from strongroom.ports import StoreTx
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller


def create_key(service: KeyService, caller: Caller, **request: Any) -> str:
    key_id: str = service.call(caller, "CreateKey", request)["KeyMetadata"]["KeyId"]
    return key_id


def decrypt(service: KeyService, caller: Caller, blob: bytes, **extra: Any) -> bytes:
    plaintext: bytes = service.call(caller, "Decrypt", {"CiphertextBlob": blob, **extra})[
        "Plaintext"
    ]
    return plaintext


def audit_events(service: KeyService) -> list[dict[str, Any]]:
    service.audit.flush()
    records = service.store.read(lambda tx: tx.read_audit(0, 100_000))
    return [json.loads(r.body) for r in records]


def stored_user_keys(service: KeyService, caller: Caller, key_id: str) -> int:
    return service.store.read(lambda tx: tx.count(caller.tenant, "userkey", key_id + "/"))


# -- round trips ----------------------------------------------------------------------------


def test_encrypt_for_user_round_trip_through_decrypt(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    context = {"purpose": "profile"}
    blob = service.encrypt_for_user(alice, key_id, "user-1", b"secret notes", context)

    header, _ = parse_header(blob)
    assert (header.kind, header.key_id, header.user_id, header.key_version) == (
        BlobKind.USER_KEY,
        key_id,
        "user-1",
        1,
    )
    response = service.call(
        alice, "Decrypt", {"CiphertextBlob": blob, "EncryptionContext": context, "KeyId": key_id}
    )
    assert response["Plaintext"] == b"secret notes"
    assert response["KeyId"].endswith(f":key/{key_id}")
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob, EncryptionContext={"purpose": "other"})
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob)


def test_generate_user_data_key_round_trip(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    data_key, blob = service.generate_user_data_key(alice, key_id, "user-1", {"k": "v"}, 16)
    assert len(data_key) == 16
    assert decrypt(service, alice, blob, EncryptionContext={"k": "v"}) == data_key
    other_key, other_blob = service.generate_user_data_key(alice, key_id, "user-1")
    assert len(other_key) == 32 and other_key != data_key
    assert decrypt(service, alice, other_blob) == other_key
    for bad in (0, 1025):
        with pytest.raises(ValidationError):
            service.generate_user_data_key(alice, key_id, "user-1", number_of_bytes=bad)


def test_user_blobs_are_bound_to_their_user(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    blob = service.encrypt_for_user(alice, key_id, "user-1", b"one")
    service.encrypt_for_user(alice, key_id, "user-2", b"two")
    # the same bytes claiming to belong to user-2 (same length id) do not open
    forged = blob.replace(b"user-1", b"user-2", 1)
    assert forged != blob
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, forged)
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob[:-1] + bytes([blob[-1] ^ 1]))


def test_user_ids_no_store_can_hold_are_invalid_ciphertext(
    service: KeyService, alice: Caller
) -> None:
    key_id = create_key(service, alice)
    blob = service.encrypt_for_user(alice, key_id, "user-1", b"x")
    header, offset = parse_header(blob)
    for forged_user in ("\x00", "a\x00b", "missing-user"):
        forged = BlobHeader(key_id, 1, BlobKind.USER_KEY, forged_user).encode() + blob[offset:]
        with pytest.raises(InvalidCiphertextError):
            decrypt(service, alice, forged)
    assert header.user_id == "user-1"


def test_alias_names_the_key(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    service.call(alice, "CreateAlias", {"AliasName": "alias/users", "TargetKeyId": key_id})
    blob = service.encrypt_for_user(alice, "alias/users", "user-1", b"via alias")
    assert parse_header(blob)[0].key_id == key_id
    assert service.user_key_exists(alice, key_id, "user-1")
    assert service.create_user_keys(alice, "alias/users", ["user-1", "user-2"]) == 1
    assert service.count_user_keys(alice, "alias/users") == 2


# -- crypto-shredding -------------------------------------------------------------------------


def test_destroying_one_user_shreds_only_that_user(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    gone = [service.encrypt_for_user(alice, key_id, "user-1", b"a%d" % i) for i in range(3)]
    _, gone_key_blob = service.generate_user_data_key(alice, key_id, "user-1")
    kept = service.encrypt_for_user(alice, key_id, "user-2", b"still here")
    assert decrypt(service, alice, gone[0]) == b"a0"  # cached before the destroy

    assert service.destroy_user_key(alice, key_id, "user-1") is True
    for blob in [*gone, gone_key_blob]:
        with pytest.raises(InvalidCiphertextError):
            decrypt(service, alice, blob)
        with pytest.raises(InvalidCiphertextError):
            decrypt(service, alice, blob, KeyId=key_id)
    assert decrypt(service, alice, kept) == b"still here"
    assert not service.user_key_exists(alice, key_id, "user-1")
    assert service.user_key_exists(alice, key_id, "user-2")
    assert service.destroy_user_key(alice, key_id, "user-1") is False

    # a new key for the same user id does not bring the old data back
    fresh = service.encrypt_for_user(alice, key_id, "user-1", b"new life")
    assert decrypt(service, alice, fresh) == b"new life"
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, gone[0])


def test_destroy_takes_effect_at_once_in_another_process(tmp_path: Path) -> None:
    clock = ManualClock()
    root_path = tmp_path / "master.key"
    LocalRootOfTrust.create(root_path)
    first = KeyService(SqliteStore(tmp_path / "s.db"), LocalRootOfTrust.load(root_path), clock)
    second = KeyService(SqliteStore(tmp_path / "s.db"), LocalRootOfTrust.load(root_path), clock)
    try:
        alice = tenant_caller(first, "alice")
        key_id = create_key(first, alice)
        blob = first.encrypt_for_user(alice, key_id, "user-1", b"x")
        assert decrypt(second, alice, blob) == b"x"  # second has it cached now
        assert first.destroy_user_key(alice, key_id, "user-1")
        with pytest.raises(InvalidCiphertextError):
            decrypt(second, alice, blob)
    finally:
        first.close()
        second.close()


def test_user_ids_with_slashes_stay_apart(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    other_key = create_key(service, alice)
    users = ["a", "a/b", "a/b/c", "a/", "ü/ß", "/"]
    blobs = {u: service.encrypt_for_user(alice, key_id, u, u.encode()) for u in users}
    service.encrypt_for_user(alice, other_key, "a", b"other key")
    assert service.count_user_keys(alice, key_id) == len(users)
    assert service.count_user_keys(alice, other_key) == 1
    assert service.destroy_user_key(alice, key_id, "a")
    for user in users[1:]:
        assert decrypt(service, alice, blobs[user]) == user.encode()
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blobs["a"])
    assert service.count_user_keys(alice, key_id) == len(users) - 1
    assert service.count_user_keys(alice, other_key) == 1


@pytest.mark.parametrize(
    "user_id", ["", "x" * 257, "é" * 129, "nul\x00byte", "\ud800", 42, None, b"bytes"]
)
def test_bad_user_ids_are_refused(sqlite_service: KeyService, user_id: Any) -> None:
    alice = tenant_caller(sqlite_service, "alice")
    key_id = create_key(sqlite_service, alice)
    with pytest.raises(ValidationError):
        sqlite_service.encrypt_for_user(alice, key_id, user_id, b"x")
    with pytest.raises(ValidationError):
        sqlite_service.create_user_keys(alice, key_id, ["fine", user_id])
    with pytest.raises(ValidationError):
        sqlite_service.destroy_user_key(alice, key_id, user_id)
    assert sqlite_service.count_user_keys(alice, key_id) == 0  # nothing half-written


def test_longest_user_id_and_plaintext_limits(sqlite_service: KeyService) -> None:
    alice = tenant_caller(sqlite_service, "alice")
    key_id = create_key(sqlite_service, alice)
    longest = "€" * 85 + "x"  # 256 bytes of UTF-8
    assert check_user_id(longest) == longest
    blob = sqlite_service.encrypt_for_user(alice, key_id, longest, b"p" * 4096)
    assert decrypt(sqlite_service, alice, blob) == b"p" * 4096  # fits Decrypt's 6144 bytes
    for plaintext in (b"", b"p" * 4097):
        with pytest.raises(ValidationError):
            sqlite_service.encrypt_for_user(alice, key_id, "user", plaintext)


# -- key lifecycle --------------------------------------------------------------------------


def test_user_keys_survive_rotation(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    old_blob = service.encrypt_for_user(alice, key_id, "old-user", b"before")
    assert service.create_user_keys(alice, key_id, ["batch-old"]) == 1
    service.call(alice, "RotateKeyOnDemand", {"KeyId": key_id})

    new_blob = service.encrypt_for_user(alice, key_id, "new-user", b"after")
    again_old = service.encrypt_for_user(alice, key_id, "old-user", b"again")
    assert service.create_user_keys(alice, key_id, ["batch-old", "batch-new"]) == 1
    batch_blobs = [
        service.encrypt_for_user(alice, key_id, u, b"b") for u in ("batch-old", "batch-new")
    ]

    assert parse_header(old_blob)[0].key_version == 1
    assert parse_header(again_old)[0].key_version == 1  # the user key keeps its version
    assert parse_header(new_blob)[0].key_version == 2
    assert [parse_header(b)[0].key_version for b in batch_blobs] == [1, 2]
    assert decrypt(service, alice, old_blob) == b"before"
    assert decrypt(service, alice, again_old) == b"again"
    assert decrypt(service, alice, new_blob) == b"after"
    assert all(decrypt(service, alice, b) == b"b" for b in batch_blobs)


def test_disabled_key_refuses_user_crypto_but_allows_forgetting(
    service: KeyService, alice: Caller
) -> None:
    key_id = create_key(service, alice)
    blob = service.encrypt_for_user(alice, key_id, "user-1", b"x")
    service.call(alice, "DisableKey", {"KeyId": key_id})
    with pytest.raises(DisabledError):
        service.encrypt_for_user(alice, key_id, "user-1", b"x")
    with pytest.raises(DisabledError):
        service.encrypt_for_user(alice, key_id, "user-new", b"x")
    with pytest.raises(DisabledError):
        service.generate_user_data_key(alice, key_id, "user-1")
    with pytest.raises(DisabledError):
        service.create_user_keys(alice, key_id, ["user-2"])
    with pytest.raises(DisabledError):
        decrypt(service, alice, blob)
    assert service.user_key_exists(alice, key_id, "user-1")
    assert not service.user_key_exists(alice, key_id, "user-new")
    assert service.destroy_user_key(alice, key_id, "user-1")
    service.call(alice, "EnableKey", {"KeyId": key_id})
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob)


def test_deleting_the_kms_key_deletes_its_user_keys(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    key_id = create_key(service, alice)
    keep_id = create_key(service, alice)
    service.create_user_keys(alice, key_id, [f"u{i}" for i in range(50)])
    service.create_user_keys(alice, keep_id, ["u1"])
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": 7})
    clock.advance(8 * 86400)
    service.run_maintenance()
    assert stored_user_keys(service, alice, key_id) == 0
    assert stored_user_keys(service, alice, keep_id) == 1
    with pytest.raises(NotFoundError):
        service.count_user_keys(alice, key_id)


def test_only_symmetric_encryption_keys_hold_user_keys(
    sqlite_service: KeyService,
) -> None:
    alice = tenant_caller(sqlite_service, "alice")
    key_id = create_key(sqlite_service, alice, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    with pytest.raises(InvalidKeyUsageError):
        sqlite_service.encrypt_for_user(alice, key_id, "user-1", b"x")
    with pytest.raises(InvalidKeyUsageError):
        sqlite_service.create_user_keys(alice, key_id, ["user-1"])


# -- tenancy ----------------------------------------------------------------------------------


def test_tenants_are_isolated(service: KeyService, alice: Caller, bob: Caller) -> None:
    alice_key = create_key(service, alice)
    bob_key = create_key(service, bob)
    alice_blob = service.encrypt_for_user(alice, alice_key, "same-user", b"alice's")
    bob_blob = service.encrypt_for_user(bob, bob_key, "same-user", b"bob's")
    arn = service.call(alice, "DescribeKey", {"KeyId": alice_key})["KeyMetadata"]["Arn"]

    with pytest.raises(NotFoundError):
        service.encrypt_for_user(bob, alice_key, "same-user", b"x")
    with pytest.raises(AccessDeniedError):
        service.encrypt_for_user(bob, arn, "same-user", b"x")
    with pytest.raises(NotFoundError):
        service.destroy_user_key(bob, alice_key, "same-user")
    with pytest.raises(NotFoundError):
        service.create_user_keys(bob, alice_key, ["x"])
    with pytest.raises(NotFoundError):
        service.user_key_exists(bob, alice_key, "same-user")
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, bob, alice_blob)
    assert service.destroy_user_key(bob, bob_key, "same-user")
    assert decrypt(service, alice, alice_blob) == b"alice's"
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, bob, bob_blob)


# -- concurrency and scale ----------------------------------------------------------------------


def test_concurrent_first_use_creates_one_key(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    barrier = threading.Barrier(8)
    blobs: list[bytes] = []
    errors: list[BaseException] = []

    def first_use(i: int) -> None:
        try:
            barrier.wait()
            blobs.append(service.encrypt_for_user(alice, key_id, "racy-user", b"%d" % i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stored_user_keys(service, alice, key_id) == 1
    assert sorted(decrypt(service, alice, b) for b in blobs) == [b"%d" % i for i in range(8)]
    created = [
        e["userKeyCreated"] for e in audit_events(service) if e.get("operation") == "EncryptForUser"
    ]
    assert sorted(created) == [False] * 7 + [True]


def test_batch_of_100000_user_keys_then_random_lookups(service: KeyService, alice: Caller) -> None:
    key_id = create_key(service, alice)
    users = [f"customer-{i:06d}" for i in range(100_000)]
    assert service.create_user_keys(alice, key_id, users) == len(users)
    assert service.create_user_keys(alice, key_id, [*users[:10], "one-more", "one-more"]) == 1
    assert service.count_user_keys(alice, key_id) == len(users) + 1

    rng = random.Random(7)
    for user in rng.sample(users, 100):
        assert service.user_key_exists(alice, key_id, user)
        blob = service.encrypt_for_user(alice, key_id, user, user.encode())
        assert decrypt(service, alice, blob) == user.encode()
    assert service.count_user_keys(alice, key_id) == len(users) + 1  # none created anew
    assert not service.user_key_exists(alice, key_id, "customer-100000")


@pytest.mark.slow
def test_a_million_user_keys_on_sqlite(sqlite_service: KeyService) -> None:
    alice = tenant_caller(sqlite_service, "alice")
    key_id = create_key(sqlite_service, alice)
    users = [f"u{i:07d}" for i in range(1_000_000)]
    assert sqlite_service.create_user_keys(alice, key_id, users) == len(users)
    assert sqlite_service.count_user_keys(alice, key_id) == len(users)
    rng = random.Random(11)
    for user in rng.sample(users, 50):
        blob = sqlite_service.encrypt_for_user(alice, key_id, user, b"m")
        assert decrypt(sqlite_service, alice, blob) == b"m"
    assert sqlite_service.destroy_user_key(alice, key_id, users[123_456])
    assert sqlite_service.count_user_keys(alice, key_id) == len(users) - 1


# -- audit and format ---------------------------------------------------------------------------


def test_user_key_operations_are_audited_without_secrets(
    sqlite_service: KeyService,
) -> None:
    alice = tenant_caller(sqlite_service, "alice")
    key_id = create_key(sqlite_service, alice)
    data_key, _ = sqlite_service.generate_user_data_key(alice, key_id, "user-1")
    sqlite_service.encrypt_for_user(alice, key_id, "user-1", b"x")
    sqlite_service.create_user_keys(alice, key_id, ["user-1", "user-2", "user-3"])
    sqlite_service.destroy_user_key(alice, key_id, "user-2", request_id="req-destroy")
    sqlite_service.count_user_keys(alice, key_id)
    with pytest.raises(NotFoundError):
        sqlite_service.destroy_user_key(alice, "00000000-0000-0000-0000-000000000000", "u")

    events = [e for e in audit_events(sqlite_service) if e.get("account") == alice.tenant]
    by_op = [(e["operation"], e["result"]) for e in events if e["operation"] != "CreateKey"]
    assert by_op[-6:] == [
        ("GenerateUserDataKey", "Success"),
        ("EncryptForUser", "Success"),
        ("CreateUserKeys", "Success"),
        ("DestroyUserKey", "Success"),
        ("CountUserKeys", "Success"),
        ("DestroyUserKey", "NotFoundException"),
    ]
    generate, encrypt, batch, destroy = events[-6:-2]
    assert generate["userKeyCreated"] is True and encrypt["userKeyCreated"] is False
    assert (batch["userKeysRequested"], batch["userKeysCreated"]) == (3, 2)
    assert destroy["requestId"] == "req-destroy"
    assert (destroy["userId"], destroy["userKeyExisted"]) == ("user-2", True)
    assert destroy["keyArn"].endswith(key_id) and destroy["principal"] == alice.principal_arn
    bodies = json.dumps(events)
    assert data_key.hex() not in bodies
    assert data_key.hex().upper() not in bodies


def test_stored_record_is_a_user_key_record(sqlite_service: KeyService) -> None:
    alice = tenant_caller(sqlite_service, "alice")
    key_id = create_key(sqlite_service, alice)
    sqlite_service.create_user_keys(alice, key_id, ["batch"])
    sqlite_service.encrypt_for_user(alice, key_id, "single", b"x")
    for user in ("batch", "single"):

        def get(tx: StoreTx, u: str = user) -> bytes | None:
            return tx.get(alice.tenant, "userkey", f"{key_id}/{u}")

        raw = sqlite_service.store.read(get)
        assert raw is not None
        record = UserKeyRecord.from_bytes(raw)
        assert record.user_id == user and record.key_version == 1
        assert record.to_bytes() == raw  # the fast encoder writes exactly the record format
        assert user not in repr(record.wrapped_material)


def test_identity_split_matches_key_identity() -> None:
    key = KeyRecord(
        "k-1",
        "123456789012",
        "us-east-1",
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
        "Enabled",
        0.0,
        current_version=3,
    )
    split = user_identities(key, 3)
    for user in ("u", "ü/ß", "x" * 256):
        assert split(user) == key_identity("userkey", "123456789012", "k-1", user, 3)
