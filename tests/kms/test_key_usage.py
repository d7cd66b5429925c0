"""GetKeyLastUsage: the last successful cryptographic use of a key, tracked beside the audit."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.errors import DryRunOperationError, InvalidCiphertextError, NotFoundError
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.kms.key_usage import (
    KeyUseRecord,
    KeyUseTracker,
    save_uses,
    stored_use,
)
from strongroom.testing.service import tenant_caller


def last_usage(service: KeyService, caller: Caller, key: str) -> dict[str, Any]:
    reply: dict[str, Any] = service.call(caller, "GetKeyLastUsage", {"KeyId": key})
    return reply


def new_key(service: KeyService, caller: Caller, **params: Any) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "CreateKey", params)["KeyMetadata"]
    return meta


def test_a_new_key_has_no_use_since_tracking_began(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    clock.advance(10)
    meta = new_key(service, alice)
    reply = last_usage(service, alice, meta["KeyId"])
    assert reply["KeyId"] == meta["Arn"]
    assert reply["KeyCreationDate"] == meta["CreationDate"]
    # tracking began with the tenant: nothing since the key's creation means never used
    assert reply["TrackingStartDate"] <= reply["KeyCreationDate"]
    assert "KeyLastUsage" not in reply


def test_each_successful_cryptographic_operation_is_the_last_use(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    key = new_key(service, alice)["KeyId"]
    clock.advance(5)
    blob = service.call(
        alice, "Encrypt", {"KeyId": key, "Plaintext": b"x"}, request_id="req-encrypt"
    )["CiphertextBlob"]
    assert last_usage(service, alice, key)["KeyLastUsage"] == {
        "Operation": "Encrypt",
        "Timestamp": clock.now(),
        "KmsRequestId": "req-encrypt",
    }
    clock.advance(5)
    service.call(alice, "Decrypt", {"CiphertextBlob": blob}, request_id="req-decrypt")
    used_at = clock.now()
    # not cryptographic, failed, or a dry run: none of them is a use
    clock.advance(5)
    service.call(alice, "DescribeKey", {"KeyId": key})
    with pytest.raises(InvalidCiphertextError):
        service.call(alice, "Decrypt", {"CiphertextBlob": blob, "EncryptionContext": {"a": "b"}})
    with pytest.raises(DryRunOperationError):
        service.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"x", "DryRun": True})
    assert last_usage(service, alice, key)["KeyLastUsage"] == {
        "Operation": "Decrypt",
        "Timestamp": used_at,
        "KmsRequestId": "req-decrypt",
    }


def test_uses_reach_other_processes_with_the_audit_flush(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    key = new_key(service, alice)["KeyId"]
    # another worker over the same store (not closed: it would close the shared store)
    other = KeyService(service.store, service.root, clock)
    service.call(alice, "GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})
    assert "KeyLastUsage" not in last_usage(other, alice, key)
    service.audit.flush()
    seen = last_usage(other, alice, key)["KeyLastUsage"]
    assert (seen["Operation"], seen["Timestamp"]) == ("GenerateDataKey", clock.now())
    # an older use flushed later by a slower worker does not hide the newer one
    clock.advance(-60)
    other.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"x"})
    other.audit.flush()
    assert last_usage(service, alice, key)["KeyLastUsage"]["Operation"] == "GenerateDataKey"


def test_re_encrypt_uses_both_keys(service: KeyService, alice: Caller) -> None:
    source, dest = new_key(service, alice)["KeyId"], new_key(service, alice)["KeyId"]
    blob = service.call(alice, "Encrypt", {"KeyId": source, "Plaintext": b"x"})["CiphertextBlob"]
    service.call(alice, "ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": dest})
    for key in (source, dest):
        assert last_usage(service, alice, key)["KeyLastUsage"]["Operation"] == "ReEncrypt"


def test_aliases_and_other_tenants_keys_are_not_found(
    service: KeyService, alice: Caller, bob: Caller
) -> None:
    meta = new_key(service, alice)
    service.call(alice, "CreateAlias", {"AliasName": "alias/used", "TargetKeyId": meta["KeyId"]})
    for name in ("alias/used", meta["Arn"].replace(f"key/{meta['KeyId']}", "alias/used")):
        with pytest.raises(NotFoundError, match="not an alias"):
            last_usage(service, alice, name)
    with pytest.raises(NotFoundError):
        last_usage(service, bob, meta["KeyId"])


def test_a_shredded_key_leaves_no_use_behind(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    meta = new_key(service, alice)
    service.call(alice, "Encrypt", {"KeyId": meta["KeyId"], "Plaintext": b"x"})
    service.audit.flush()
    assert service.store.read(lambda tx: stored_use(tx, alice.tenant, meta["KeyId"])) is not None
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": meta["KeyId"], "PendingWindowInDays": 7})
    clock.advance(8 * 86400)
    service.run_maintenance()
    assert service.store.read(lambda tx: stored_use(tx, alice.tenant, meta["KeyId"])) is None
    # a use noted before the deletion and flushed after it does not come back either
    service.audit.key_uses.note(meta["Arn"], "Encrypt", clock.now(), "late")
    service.audit.flush()
    assert service.store.read(lambda tx: stored_use(tx, alice.tenant, meta["KeyId"])) is None


def test_a_failed_flush_keeps_the_uses_for_the_next() -> None:
    tracker = KeyUseTracker()
    arn = "arn:aws:kms:us-east-1:123456789012:key/k"
    tracker.note(arn, "Encrypt", 10.0, "a")
    taken = tracker.take()
    # taken by a flush not yet committed: still visible (else a reader could miss it)
    assert tracker.latest(arn) == KeyUseRecord("Encrypt", 10.0, "a")
    tracker.note(arn, "Decrypt", 20.0, "b")  # noted while the flush was failing
    tracker.give_back(taken)
    assert tracker.latest(arn) == KeyUseRecord("Decrypt", 20.0, "b")
    tracker.give_back({arn: KeyUseRecord("Sign", 30.0, "c")})
    assert tracker.latest(arn) == KeyUseRecord("Sign", 30.0, "c")
    assert tracker.take() == {arn: KeyUseRecord("Sign", 30.0, "c")}
    tracker.written()  # committed: the store answers from now on
    assert tracker.latest(arn) is None


def test_save_uses_keeps_the_newest(sqlite_service: KeyService) -> None:
    caller = tenant_caller(sqlite_service, "newest")
    meta = new_key(sqlite_service, caller)
    arn, key_id = meta["Arn"], meta["KeyId"]
    store = sqlite_service.store
    store.write(lambda tx: save_uses(tx, {arn: KeyUseRecord("Sign", 50.0, "new")}))
    store.write(lambda tx: save_uses(tx, {arn: KeyUseRecord("Verify", 40.0, "old")}))
    assert store.read(lambda tx: stored_use(tx, caller.tenant, key_id)) == KeyUseRecord(
        "Sign", 50.0, "new"
    )
    store.write(lambda tx: save_uses(tx, {arn: KeyUseRecord("Verify", 60.0, "newer")}))
    assert store.read(lambda tx: stored_use(tx, caller.tenant, key_id)) == KeyUseRecord(
        "Verify", 60.0, "newer"
    )
