"""No key material, data key, secret access key or plaintext ever leaves in text.

A workload of successes and failures runs with logging captured at DEBUG. The test learns
every secret it can (tenant KEKs and key material by unwrapping what the store holds, data
keys and plaintexts from responses, secret access keys from the admin calls) and then looks
for each, in every encoding a leak would take, in log lines, exception texts (with their
causes), the ``repr`` of the service, its parts, caches and records, and audit event bodies.
"""

from __future__ import annotations

import base64
import logging
import pickle
import secrets
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from strongroom.crypto.wrap import key_identity, unwrap_key
from strongroom.errors import StrongroomError
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.kms.records import (
    AliasRecord,
    KeyRecord,
    KeyVersionRecord,
    PrincipalRecord,
    TenantRecord,
)

DAY = 86400.0


def encodings(secret: bytes) -> Iterator[str]:
    """Text forms a leak of ``secret`` would take, each also found inside larger buffers."""
    yield secret.hex()
    yield secret.hex().upper()
    for shift in range(3):
        # The middle of a base64 encoding does not depend on the bytes around ``secret``
        # once they are aligned the same way modulo 3, so try all three alignments.
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(bytes(shift) + secret).decode("ascii")
            middle = text[4:-4].rstrip("=")
            if len(middle) >= 12:
                yield middle
    raw_repr = repr(secret)[2:-1]
    if len(raw_repr) >= 24:
        yield raw_repr[4:-4]
    if secret.isascii() and secret.decode("ascii").isprintable() and len(secret) >= 12:
        yield secret.decode("ascii")


class Secrets:
    """Everything the test must never find."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def add(self, label: str, value: bytes) -> None:
        assert len(value) >= 12, label
        self.items[f"{label}#{len(self.items)}"] = value

    def find_in(self, where: str, texts: Iterable[str]) -> list[str]:
        needles = [(label, n) for label, value in self.items.items() for n in encodings(value)]
        found = []
        for text in texts:
            for label, needle in needles:
                if needle in text:
                    found.append(f"{label} in {where}: ...{needle[:16]}...")
        return found


def exception_texts(exc: BaseException) -> Iterator[str]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield from (repr(arg) for arg in current.args)
        current = current.__cause__ or current.__context__


class Workload:
    """Runs calls, keeping every response and every exception raised."""

    def __init__(self, service: KeyService, secrets_: Secrets) -> None:
        self.service = service
        self.secrets = secrets_
        self.errors: list[BaseException] = []
        self.responses: list[dict[str, Any]] = []

    def call(self, caller: Caller, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        response = self.service.call(caller, operation, request)
        self.responses.append(response)
        return response

    def fail(self, caller: Caller, operation: str, request: dict[str, Any]) -> None:
        try:
            self.service.call(caller, operation, request)
        except StrongroomError as exc:
            self.errors.append(exc)
            return
        raise AssertionError(f"{operation} should have failed")


def run_workload(service: KeyService, clock: ManualClock, found: Secrets) -> Workload:
    work = Workload(service, found)
    tenants = []
    for name in ("alice", "bob"):
        tenant = service.create_tenant(name)
        _, secret = service.create_access_key(tenant.account_id, "admin")
        found.add("secret access key", secret.encode("ascii"))
        tenants.append(tenant.account_id)
    callers = []
    for account in tenants:
        principal, secret = service.create_access_key(account, "app")
        found.add("secret access key", secret.encode("ascii"))
        access = service.lookup_access_key(principal.access_key_id)
        assert access is not None
        assert access.secret_access_key == secret
        assert secret not in repr(access)
        callers.append(access.caller)
    alice, bob = callers

    key = work.call(alice, "CreateKey", {"Description": "main"})["KeyMetadata"]["KeyId"]
    other = work.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
    work.call(alice, "CreateAlias", {"AliasName": "alias/main", "TargetKeyId": key})
    work.call(alice, "EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": 90})

    plaintext = b"PLAINTEXT-" + secrets.token_hex(16).encode("ascii")
    found.add("plaintext", plaintext)
    binary_plaintext = secrets.token_bytes(48)
    found.add("plaintext", binary_plaintext)
    context = {"purpose": "leak-test"}
    blob = work.call(
        alice, "Encrypt", {"KeyId": key, "Plaintext": plaintext, "EncryptionContext": context}
    )["CiphertextBlob"]
    binary_blob = work.call(
        alice, "Encrypt", {"KeyId": "alias/main", "Plaintext": binary_plaintext}
    )["CiphertextBlob"]
    assert (
        work.call(alice, "Decrypt", {"CiphertextBlob": blob, "EncryptionContext": context})[
            "Plaintext"
        ]
        == plaintext
    )
    work.call(alice, "Decrypt", {"CiphertextBlob": binary_blob})

    for spec in ("AES_256", "AES_128"):
        data_key = work.call(alice, "GenerateDataKey", {"KeyId": key, "KeySpec": spec})
        found.add("data key", data_key["Plaintext"])
    wrapped_only = work.call(
        alice, "GenerateDataKeyWithoutPlaintext", {"KeyId": key, "NumberOfBytes": 64}
    )["CiphertextBlob"]
    found.add(
        "data key", work.call(alice, "Decrypt", {"CiphertextBlob": wrapped_only})["Plaintext"]
    )
    found.add("random", work.call(alice, "GenerateRandom", {"NumberOfBytes": 32})["Plaintext"])
    moved = work.call(
        alice,
        "ReEncrypt",
        {
            "CiphertextBlob": blob,
            "SourceEncryptionContext": context,
            "DestinationKeyId": other,
        },
    )["CiphertextBlob"]
    work.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    kem = work.call(
        alice, "CreateKey", {"KeySpec": "ML_KEM_768", "KeyUsage": "ENCAPSULATE_DECAPSULATE"}
    )["KeyMetadata"]["KeyId"]
    shared = work.call(alice, "Encapsulate", {"KeyId": kem, "EncapsulationAlgorithm": "ML_KEM"})
    found.add("shared secret", shared["SharedSecret"])
    kem_request = {
        "KeyId": kem,
        "EncapsulationAlgorithm": "ML_KEM",
        "SharedSecretCiphertextBlob": shared["SharedSecretCiphertextBlob"],
    }
    work.call(alice, "Decapsulate", kem_request)
    short = kem_request | {"SharedSecretCiphertextBlob": shared["SharedSecretCiphertextBlob"][:-1]}
    work.fail(alice, "Decapsulate", short)
    work.call(alice, "Encrypt", {"KeyId": key, "Plaintext": plaintext})

    # Failures, each carrying secret-looking input.
    work.fail(alice, "Decrypt", {"CiphertextBlob": blob, "EncryptionContext": {"x": "y"}})
    work.fail(alice, "Decrypt", {"CiphertextBlob": blob[:-1] + bytes([blob[-1] ^ 1])})
    work.fail(alice, "Decrypt", {"CiphertextBlob": moved, "KeyId": key})
    work.fail(alice, "Decrypt", {"CiphertextBlob": plaintext})
    work.fail(alice, "Encrypt", {"KeyId": key, "Plaintext": plaintext * 200})
    work.fail(alice, "Encrypt", {"KeyId": "alias/missing", "Plaintext": plaintext})
    work.fail(alice, "Encrypt", {"KeyId": key, "Plaintext": plaintext, "DryRun": True})
    work.fail(bob, "Decrypt", {"CiphertextBlob": blob, "EncryptionContext": context})
    work.fail(bob, "Encrypt", {"KeyId": key, "Plaintext": plaintext})
    work.fail(alice, "ScheduleKeyDeletion", {"KeyId": other, "PendingWindowInDays": 3})

    work.call(alice, "DisableKey", {"KeyId": other})
    work.fail(alice, "Decrypt", {"CiphertextBlob": moved})
    work.call(alice, "EnableKey", {"KeyId": other})
    work.call(alice, "ScheduleKeyDeletion", {"KeyId": other, "PendingWindowInDays": 7})

    collect_material(service, found, tenants)  # before shredding: learn every version
    clock.advance(91 * DAY)
    maintenance = service.run_maintenance()
    assert maintenance["deleted"] and maintenance["rotated"]
    work.fail(alice, "Decrypt", {"CiphertextBlob": moved})
    work.call(alice, "Decrypt", {"CiphertextBlob": binary_blob})
    collect_material(service, found, tenants)
    service.audit.flush()
    return work


def collect_material(service: KeyService, found: Secrets, tenants: list[str]) -> None:
    """Learn every tenant KEK and key version's material by unwrapping what the store holds."""
    for account in tenants:
        raw = service.store.read(lambda tx, a=account: tx.get(a, "tenant", "self"))  # type: ignore[misc]
        assert raw is not None
        tenant = TenantRecord.from_bytes(raw)
        kek = service.root.unwrap(tenant.wrapped_kek, key_identity("tenant", account))
        found.add("tenant KEK", kek)
        versions = service.store.read(lambda tx, a=account: tx.scan(a, "keyver"))  # type: ignore[misc]
        for _, raw_version in versions:
            version = KeyVersionRecord.from_bytes(raw_version)
            material = unwrap_key(
                kek,
                version.wrapped_material,
                key_identity("keyver", account, version.key_id, version.version),
            )
            found.add("key material", material)
    local_root = getattr(service.root, "_key", None)
    if isinstance(local_root, bytes):
        found.add("root key", local_root)


def record_reprs(service: KeyService) -> Iterator[str]:
    """``repr`` of every record the store holds, parsed as the core parses it."""
    parsers: dict[str, Callable[[bytes], object]] = {
        "tenant": TenantRecord.from_bytes,
        "principal": PrincipalRecord.from_bytes,
        "key": KeyRecord.from_bytes,
        "keyver": KeyVersionRecord.from_bytes,
        "alias": AliasRecord.from_bytes,
    }

    def unit(tx: Any) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for tenant in tx.tenants():
            for kind in parsers:
                out.extend((kind, raw) for _, raw in tx.scan(tenant, kind))
        return out

    for kind, raw in service.store.read(unit):
        yield repr(parsers[kind](raw))


@pytest.fixture
def leak_check(
    service: KeyService, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> tuple[Workload, Secrets, pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    found = Secrets()
    work = run_workload(service, clock, found)
    assert len([k for k in found.items if k.startswith("key material")]) >= 4
    return work, found, caplog


def test_no_secret_in_logs(leak_check: tuple[Workload, Secrets, pytest.LogCaptureFixture]) -> None:
    _, found, caplog = leak_check
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_text:
            texts.append(record.exc_text)
    assert found.find_in("logs", texts) == []


def test_no_secret_in_exceptions(
    leak_check: tuple[Workload, Secrets, pytest.LogCaptureFixture],
) -> None:
    work, found, _ = leak_check
    assert len(work.errors) >= 12
    texts = [text for exc in work.errors for text in exception_texts(exc)]
    assert found.find_in("exceptions", texts) == []


def test_no_secret_in_reprs(
    leak_check: tuple[Workload, Secrets, pytest.LogCaptureFixture],
) -> None:
    work, found, _ = leak_check
    service = work.service
    texts = [repr(service), str(service), repr(service.root), repr(service.store)]
    texts += [repr(value) for value in vars(service).values()]
    texts += list(record_reprs(service))
    assert found.find_in("reprs", texts) == []
    # The caches do hold material right now, and still do not show it.
    assert service.kernel.materials._material._items
    assert "hidden" in repr(service.kernel.materials._material)


def test_no_secret_in_audit_events(
    leak_check: tuple[Workload, Secrets, pytest.LogCaptureFixture],
) -> None:
    work, found, _ = leak_check
    records = work.service.store.read(lambda tx: tx.read_audit(0, 100_000))
    assert len(records) >= 30
    texts = [r.body.decode("utf-8") for r in records]
    assert any('"operation":"Decrypt"' in t for t in texts)
    assert found.find_in("audit events", texts) == []


def test_responses_hold_secrets_only_where_aws_puts_them(
    leak_check: tuple[Workload, Secrets, pytest.LogCaptureFixture],
) -> None:
    """The check itself works: it finds secrets where they legitimately are."""
    work, found, _ = leak_check
    secret_members = ("Plaintext", "SharedSecret")
    holding = [r[m] for r in work.responses for m in secret_members if m in r]
    hits = found.find_in("responses", [repr(value) + value.hex() for value in holding])
    assert {hit.split("#")[0] for hit in hits} >= {"plaintext", "shared secret"}
    without = [
        repr({k: v for k, v in r.items() if k not in secret_members}) for r in work.responses
    ]
    assert found.find_in("responses", without) == []


def test_service_and_root_refuse_pickling(service: KeyService) -> None:
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(service)
    with pytest.raises(TypeError):
        pickle.dumps(service.root)
