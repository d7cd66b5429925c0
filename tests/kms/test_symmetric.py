"""Symmetric operations through ``KeyService.call``, with AWS KMS semantics."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from strongroom.crypto import BlobHeader, BlobKind, parse_header
from strongroom.errors import (
    DisabledError,
    DryRunOperationError,
    IncorrectKeyError,
    InvalidCiphertextError,
    InvalidKeyUsageError,
    InvalidStateError,
    NotFoundError,
    StrongroomError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService

ARN_RE = re.compile(r"arn:aws:kms:us-east-1:(\d{12}):key/([0-9a-f-]{36})")


def create_key(service: KeyService, caller: Caller, **request: Any) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "CreateKey", request)["KeyMetadata"]
    return meta


def encrypt(
    service: KeyService,
    caller: Caller,
    key: str,
    plaintext: bytes = b"attack at dawn",
    context: dict[str, str] | None = None,
) -> bytes:
    request: dict[str, Any] = {"KeyId": key, "Plaintext": plaintext}
    if context is not None:
        request["EncryptionContext"] = context
    blob: bytes = service.call(caller, "Encrypt", request)["CiphertextBlob"]
    return blob


def decrypt(service: KeyService, caller: Caller, blob: bytes, **extra: Any) -> dict[str, Any]:
    return service.call(caller, "Decrypt", {"CiphertextBlob": blob, **extra})


def audit_bodies(service: KeyService) -> list[dict[str, Any]]:
    service.audit.flush()
    records = service.store.read(lambda tx: tx.read_audit(0, 100_000))
    return [json.loads(r.body) for r in records]


# -- Encrypt / Decrypt ---------------------------------------------------------------------


def test_encrypt_and_decrypt_answer_with_aws_fields(service: KeyService, alice: Caller) -> None:
    meta = create_key(service, alice)
    response = service.call(alice, "Encrypt", {"KeyId": meta["KeyId"], "Plaintext": b"hello"})
    assert set(response) == {"CiphertextBlob", "KeyId", "EncryptionAlgorithm"}
    assert response["KeyId"] == meta["Arn"]
    match = ARN_RE.fullmatch(response["KeyId"])
    assert match is not None
    assert match.groups() == (alice.tenant, meta["KeyId"])
    assert response["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = response["CiphertextBlob"]
    assert isinstance(blob, bytes)
    assert b"hello" not in blob
    assert parse_header(blob)[0] == BlobHeader(meta["KeyId"], 1, BlobKind.KEY)

    plain = decrypt(service, alice, blob)
    assert plain == {
        "KeyId": meta["Arn"],
        "Plaintext": b"hello",
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "KeyMaterialId": meta["CurrentKeyMaterialId"],
    }


def test_each_encryption_is_randomised(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    blobs = {encrypt(service, alice, key, b"same") for _ in range(3)}
    assert len(blobs) == 3


@pytest.mark.parametrize("size", [1, 4096])
def test_plaintext_limits_round_trip(service: KeyService, alice: Caller, size: int) -> None:
    key = create_key(service, alice)["KeyId"]
    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    blob = encrypt(service, alice, key, plaintext)
    assert decrypt(service, alice, blob)["Plaintext"] == plaintext


@pytest.mark.parametrize("form", ["id", "arn", "alias", "alias_arn"])
def test_key_id_forms(service: KeyService, alice: Caller, form: str) -> None:
    meta = create_key(service, alice)
    service.call(alice, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": meta["KeyId"]})
    key_ref = {
        "id": meta["KeyId"],
        "arn": meta["Arn"],
        "alias": "alias/app",
        "alias_arn": f"arn:aws:kms:us-east-1:{alice.tenant}:alias/app",
    }[form]
    response = service.call(alice, "Encrypt", {"KeyId": key_ref, "Plaintext": b"x"})
    assert response["KeyId"] == meta["Arn"]
    plain = decrypt(service, alice, response["CiphertextBlob"], KeyId=key_ref)
    assert plain["Plaintext"] == b"x"
    assert plain["KeyId"] == meta["Arn"]
    data_key = service.call(alice, "GenerateDataKey", {"KeyId": key_ref, "KeySpec": "AES_256"})
    assert data_key["KeyId"] == meta["Arn"]


def test_a_key_arn_never_names_an_alias(service: KeyService, alice: Caller) -> None:
    meta = create_key(service, alice)
    service.call(alice, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": meta["KeyId"]})
    prefix = f"arn:aws:kms:us-east-1:{alice.tenant}:"
    for ref in (prefix + "key/alias/app", prefix + "key/" + meta["KeyId"] + "/x", prefix + "app"):
        with pytest.raises(NotFoundError):
            encrypt(service, alice, ref)
    assert service.call(alice, "Encrypt", {"KeyId": prefix + "alias/app", "Plaintext": b"x"})


def test_unknown_key_is_not_found(service: KeyService, alice: Caller) -> None:
    missing = str(uuid.uuid4())
    for ref in (missing, f"arn:aws:kms:us-east-1:{alice.tenant}:key/{missing}", "alias/none"):
        with pytest.raises(NotFoundError):
            encrypt(service, alice, ref)


def test_decrypt_without_key_id_finds_the_key(service: KeyService, alice: Caller) -> None:
    first = create_key(service, alice)
    second = create_key(service, alice)
    blob_1 = encrypt(service, alice, first["KeyId"], b"one")
    blob_2 = encrypt(service, alice, second["KeyId"], b"two")
    assert decrypt(service, alice, blob_1) == {
        "KeyId": first["Arn"],
        "Plaintext": b"one",
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "KeyMaterialId": first["CurrentKeyMaterialId"],
    }
    assert decrypt(service, alice, blob_2)["KeyId"] == second["Arn"]


@pytest.mark.parametrize("form", ["id", "arn", "alias"])
def test_decrypt_with_the_wrong_key_id_is_incorrect_key(
    service: KeyService, alice: Caller, form: str
) -> None:
    right = create_key(service, alice)
    wrong = create_key(service, alice)
    service.call(alice, "CreateAlias", {"AliasName": "alias/wrong", "TargetKeyId": wrong["KeyId"]})
    ref = {"id": wrong["KeyId"], "arn": wrong["Arn"], "alias": "alias/wrong"}[form]
    blob = encrypt(service, alice, right["KeyId"])
    with pytest.raises(IncorrectKeyError):
        decrypt(service, alice, blob, KeyId=ref)


def test_decrypt_with_an_unknown_key_id_is_not_found(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key)
    with pytest.raises(NotFoundError):
        decrypt(service, alice, blob, KeyId=str(uuid.uuid4()))


CONTEXT = {"purpose": "invoice", "tenant-user": "42"}


@pytest.mark.parametrize(
    "given_context",
    [
        None,
        {},
        {"purpose": "invoice"},
        {"purpose": "invoice", "tenant-user": "43"},
        {"purpose": "Invoice", "tenant-user": "42"},
        {"Purpose": "invoice", "tenant-user": "42"},
        {**CONTEXT, "extra": ""},
        {**CONTEXT, "extra": "1"},
    ],
    ids=[
        "none",
        "empty",
        "missing",
        "wrong-value",
        "value-case",
        "key-case",
        "extra-empty",
        "extra",
    ],
)
def test_encryption_context_is_bound(
    service: KeyService, alice: Caller, given_context: dict[str, str] | None
) -> None:
    key = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key, b"bound", CONTEXT)
    extra = {} if given_context is None else {"EncryptionContext": given_context}
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob, **extra)
    reordered = dict(reversed(list(CONTEXT.items())))
    assert decrypt(service, alice, blob, EncryptionContext=reordered)["Plaintext"] == b"bound"


def test_context_given_only_at_decrypt_fails(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key)
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob, EncryptionContext={"a": "b"})
    assert decrypt(service, alice, blob, EncryptionContext={})["Plaintext"] == b"attack at dawn"


def test_context_concatenation_does_not_collide(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    blob_ab = encrypt(service, alice, key, b"x", {"ab": "c"})
    blob_a = encrypt(service, alice, key, b"x", {"a": "bc"})
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob_ab, EncryptionContext={"a": "bc"})
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob_a, EncryptionContext={"ab": "c"})
    assert decrypt(service, alice, blob_ab, EncryptionContext={"ab": "c"})["Plaintext"] == b"x"
    assert decrypt(service, alice, blob_a, EncryptionContext={"a": "bc"})["Plaintext"] == b"x"


def test_unicode_context_round_trips(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    context = {"clé": "värde", "": "empty key", "emoji": "\U0001f511"}
    blob = encrypt(service, alice, key, b"u", context)
    assert decrypt(service, alice, blob, EncryptionContext=context)["Plaintext"] == b"u"


def test_symmetric_key_refuses_asymmetric_algorithm(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    with pytest.raises(InvalidKeyUsageError):
        service.call(
            alice,
            "Encrypt",
            {"KeyId": key, "Plaintext": b"x", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
        )


def test_mac_key_cannot_encrypt(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyId"]
    with pytest.raises(InvalidKeyUsageError):
        encrypt(service, alice, key)
    with pytest.raises(InvalidKeyUsageError):
        service.call(alice, "GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})


def test_decrypt_needs_a_ciphertext(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    with pytest.raises(ValidationError, match="ciphertextBlob"):
        service.call(alice, "Decrypt", {"KeyId": key})
    with pytest.raises(ValidationError, match="ciphertextBlob"):
        service.call(alice, "ReEncrypt", {"DestinationKeyId": key})


# -- ReEncrypt -------------------------------------------------------------------------------


def test_re_encrypt_moves_a_ciphertext_to_another_key(service: KeyService, alice: Caller) -> None:
    source = create_key(service, alice)
    dest = create_key(service, alice)
    blob = encrypt(service, alice, source["KeyId"], b"moved", {"from": "a"})
    response = service.call(
        alice,
        "ReEncrypt",
        {
            "CiphertextBlob": blob,
            "SourceEncryptionContext": {"from": "a"},
            "DestinationKeyId": dest["KeyId"],
            "DestinationEncryptionContext": {"to": "b"},
        },
    )
    assert set(response) == {
        "CiphertextBlob",
        "SourceKeyId",
        "KeyId",
        "SourceEncryptionAlgorithm",
        "DestinationEncryptionAlgorithm",
        "SourceKeyMaterialId",
        "DestinationKeyMaterialId",
    }
    assert response["SourceKeyMaterialId"] == source["CurrentKeyMaterialId"]
    assert response["DestinationKeyMaterialId"] == dest["CurrentKeyMaterialId"]
    assert response["SourceKeyId"] == source["Arn"]
    assert response["KeyId"] == dest["Arn"]
    assert response["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert response["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    new_blob = response["CiphertextBlob"]
    assert parse_header(new_blob)[0].key_id == dest["KeyId"]
    plain = decrypt(service, alice, new_blob, EncryptionContext={"to": "b"})
    assert plain["Plaintext"] == b"moved"
    assert plain["KeyId"] == dest["Arn"]
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, new_blob, EncryptionContext={"from": "a"})


def test_re_encrypt_checks_source_context_and_key(service: KeyService, alice: Caller) -> None:
    source = create_key(service, alice)["KeyId"]
    other = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, source, b"x", {"k": "v"})
    with pytest.raises(InvalidCiphertextError):
        service.call(alice, "ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": other})
    with pytest.raises(IncorrectKeyError):
        service.call(
            alice,
            "ReEncrypt",
            {
                "CiphertextBlob": blob,
                "SourceEncryptionContext": {"k": "v"},
                "SourceKeyId": other,
                "DestinationKeyId": other,
            },
        )


def test_re_encrypt_to_the_same_key_gives_a_fresh_blob(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key, b"same key")
    response = service.call(alice, "ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": key})
    assert response["CiphertextBlob"] != blob
    assert decrypt(service, alice, response["CiphertextBlob"])["Plaintext"] == b"same key"


# -- data keys and randomness ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "size"),
    [({"KeySpec": "AES_256"}, 32), ({"KeySpec": "AES_128"}, 16)]
    + [({"NumberOfBytes": n}, n) for n in (1, 64, 1024)],
)
def test_generate_data_key(
    service: KeyService, alice: Caller, spec: dict[str, Any], size: int
) -> None:
    meta = create_key(service, alice)
    context = {"bucket": "b1"}
    response = service.call(
        alice, "GenerateDataKey", {"KeyId": meta["KeyId"], "EncryptionContext": context, **spec}
    )
    assert set(response) == {"CiphertextBlob", "Plaintext", "KeyId", "KeyMaterialId"}
    assert response["KeyId"] == meta["Arn"]
    assert response["KeyMaterialId"] == meta["CurrentKeyMaterialId"]
    assert len(response["Plaintext"]) == size
    blob = response["CiphertextBlob"]
    assert (
        decrypt(service, alice, blob, EncryptionContext=context)["Plaintext"]
        == (response["Plaintext"])
    )
    with pytest.raises(InvalidCiphertextError):
        decrypt(service, alice, blob)


def test_generate_data_key_gives_fresh_keys(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    keys = {
        service.call(alice, "GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})["Plaintext"]
        for _ in range(3)
    }
    assert len(keys) == 3


def test_generate_data_key_without_plaintext(service: KeyService, alice: Caller) -> None:
    meta = create_key(service, alice)
    response = service.call(
        alice,
        "GenerateDataKeyWithoutPlaintext",
        {"KeyId": meta["KeyId"], "KeySpec": "AES_128", "EncryptionContext": {"a": "b"}},
    )
    assert set(response) == {"CiphertextBlob", "KeyId", "KeyMaterialId"}
    assert response["KeyId"] == meta["Arn"]
    plain = decrypt(service, alice, response["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert len(plain["Plaintext"]) == 16


@pytest.mark.parametrize("operation", ["GenerateDataKey", "GenerateDataKeyWithoutPlaintext"])
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "specify either number of bytes or key spec"),
        ({"KeySpec": "AES_256", "NumberOfBytes": 32}, "not both"),
    ],
)
def test_generate_data_key_needs_exactly_one_size(
    service: KeyService, alice: Caller, operation: str, spec: dict[str, Any], message: str
) -> None:
    key = create_key(service, alice)["KeyId"]
    with pytest.raises(ValidationError, match=message):
        service.call(alice, operation, {"KeyId": key, **spec})


@pytest.mark.parametrize("size", [1, 32, 1024])
def test_generate_random(service: KeyService, alice: Caller, size: int) -> None:
    response = service.call(alice, "GenerateRandom", {"NumberOfBytes": size})
    assert set(response) == {"Plaintext"}
    assert len(response["Plaintext"]) == size


def test_generate_random_is_random(service: KeyService, alice: Caller) -> None:
    values = {service.call(alice, "GenerateRandom", {"NumberOfBytes": 16})["Plaintext"]}
    values.add(service.call(alice, "GenerateRandom", {"NumberOfBytes": 16})["Plaintext"])
    assert len(values) == 2


def test_generate_random_needs_a_size(service: KeyService, alice: Caller) -> None:
    with pytest.raises(ValidationError, match="NumberOfBytes"):
        service.call(alice, "GenerateRandom", {})


# -- DryRun ----------------------------------------------------------------------------------


def _dry_run_requests(key: str, blob: bytes) -> dict[str, dict[str, Any]]:
    return {
        "Encrypt": {"KeyId": key, "Plaintext": b"x"},
        "Decrypt": {"CiphertextBlob": blob},
        "ReEncrypt": {"CiphertextBlob": blob, "DestinationKeyId": key},
        "GenerateDataKey": {"KeyId": key, "KeySpec": "AES_256"},
        "GenerateDataKeyWithoutPlaintext": {"KeyId": key, "NumberOfBytes": 8},
    }


@pytest.mark.parametrize(
    "operation",
    ["Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"],
)
def test_dry_run_reports_success_as_an_error(
    service: KeyService, alice: Caller, operation: str
) -> None:
    key = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key)
    request = _dry_run_requests(key, blob)[operation]
    with pytest.raises(DryRunOperationError) as info:
        service.call(alice, operation, {**request, "DryRun": True}, request_id="dry-1")
    assert info.value.http_status == 400
    assert "Plaintext" not in str(info.value)
    events = [e for e in audit_bodies(service) if e.get("requestId") == "dry-1"]
    assert [(e["operation"], e["result"]) for e in events] == [
        (operation, "DryRunOperationException")
    ]
    # DryRun=False is a normal call.
    assert service.call(alice, operation, {**request, "DryRun": False})


@pytest.mark.parametrize(
    "operation",
    ["Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"],
)
def test_dry_run_reports_the_error_the_call_would_raise(
    service: KeyService, alice: Caller, operation: str
) -> None:
    key = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key)
    service.call(alice, "DisableKey", {"KeyId": key})
    request = _dry_run_requests(key, blob)[operation]
    with pytest.raises(DisabledError):
        service.call(alice, operation, {**request, "DryRun": True})


def test_dry_run_changes_nothing(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    before = service.call(alice, "ListKeys", {})
    with pytest.raises(DryRunOperationError):
        service.call(alice, "CreateKey", {"DryRun": True})
    with pytest.raises(DryRunOperationError):
        service.call(alice, "DisableKey", {"KeyId": key, "DryRun": True})
    assert service.call(alice, "ListKeys", {}) == before
    assert service.call(alice, "DescribeKey", {"KeyId": key})["KeyMetadata"]["Enabled"] is True


# -- key states ------------------------------------------------------------------------------


def _crypto_calls(key: str, other: str, blob: bytes) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("Encrypt", {"KeyId": key, "Plaintext": b"x"}),
        ("Decrypt", {"CiphertextBlob": blob}),
        ("Decrypt", {"CiphertextBlob": blob, "KeyId": key}),
        ("GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"}),
        ("GenerateDataKeyWithoutPlaintext", {"KeyId": key, "KeySpec": "AES_256"}),
        ("ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": other}),
    ]


def test_disabled_key_refuses_crypto(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    other = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key)
    other_blob = encrypt(service, alice, other)
    service.call(alice, "DisableKey", {"KeyId": key})
    for operation, request in _crypto_calls(key, other, blob):
        with pytest.raises(DisabledError, match="disabled"):
            service.call(alice, operation, request)
    with pytest.raises(DisabledError):
        service.call(alice, "ReEncrypt", {"CiphertextBlob": other_blob, "DestinationKeyId": key})
    service.call(alice, "EnableKey", {"KeyId": key})
    assert decrypt(service, alice, blob)["Plaintext"] == b"attack at dawn"


def test_key_pending_deletion_refuses_crypto(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)["KeyId"]
    other = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key)
    other_blob = encrypt(service, alice, other)
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    for operation, request in _crypto_calls(key, other, blob):
        with pytest.raises(InvalidStateError, match="pending deletion"):
            service.call(alice, operation, request)
    with pytest.raises(InvalidStateError):
        service.call(alice, "ReEncrypt", {"CiphertextBlob": other_blob, "DestinationKeyId": key})
    service.call(alice, "CancelKeyDeletion", {"KeyId": key})
    service.call(alice, "EnableKey", {"KeyId": key})
    assert decrypt(service, alice, blob)["Plaintext"] == b"attack at dawn"


def test_crypto_still_works_after_the_material_cache_expires(
    service: KeyService, alice: Caller, clock: Any
) -> None:
    key = create_key(service, alice)["KeyId"]
    blob = encrypt(service, alice, key, b"later")
    clock.advance(3600)
    assert decrypt(service, alice, blob)["Plaintext"] == b"later"
    assert decrypt(service, alice, encrypt(service, alice, key, b"new"))["Plaintext"] == b"new"


# -- malformed and mutated ciphertexts (hypothesis) -------------------------------------------


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclasses.dataclass
class Fixture:
    key: dict[str, Any]
    other: dict[str, Any]
    blob: bytes
    context: dict[str, str]


def _fixture(service: KeyService, alice: Caller) -> Fixture:
    key = create_key(service, alice)
    other = create_key(service, alice)
    service.call(alice, "RotateKeyOnDemand", {"KeyId": key["KeyId"]})
    context = {"k": "v"}
    blob = encrypt(service, alice, key["KeyId"], b"fuzz me", context)
    return Fixture(key, other, blob, context)


def _expect_failure(
    service: KeyService, alice: Caller, fx: Fixture, mutated: bytes, with_key_id: bool
) -> None:
    """A blob that is not the original fails with the one AWS error for it.

    Without a KeyId: always InvalidCiphertextException. With the original KeyId:
    IncorrectKeyException exactly when the (parsable) mutated header names another
    existing key of the caller, InvalidCiphertextException otherwise.
    """
    request: dict[str, Any] = {"CiphertextBlob": mutated, "EncryptionContext": fx.context}
    expected: type[StrongroomError] = InvalidCiphertextError
    if with_key_id:
        request["KeyId"] = fx.key["KeyId"]
        try:
            named = parse_header(mutated)[0].key_id
        except Exception:
            named = None
        if named == fx.other["KeyId"]:
            expected = IncorrectKeyError
    with pytest.raises(StrongroomError) as info:
        service.call(alice, "Decrypt", request)
    assert type(info.value) is expected, (type(info.value), info.value)
    assert info.value.message == "" or "fuzz me" not in info.value.message


@pytest.fixture
def fuzz(service: KeyService, alice: Caller) -> Fixture:
    """Two keys (the first rotated once) and a blob under the first key's version 2."""
    return _fixture(service, alice)


@FUZZ
@given(data=st.binary(min_size=1, max_size=6144), with_key_id=st.booleans())
def test_random_blobs_are_invalid_ciphertext(
    service: KeyService, alice: Caller, fuzz: Fixture, data: bytes, with_key_id: bool
) -> None:
    _expect_failure(service, alice, fuzz, data, with_key_id)


def _mutations(blob: bytes, other_key_id: str) -> st.SearchStrategy[bytes]:
    header, offset = parse_header(blob)
    n = len(blob)
    flips = st.tuples(st.integers(0, n - 1), st.integers(0, 7)).map(
        lambda p: blob[: p[0]] + bytes([blob[p[0]] ^ (1 << p[1])]) + blob[p[0] + 1 :]
    )
    truncations = st.integers(0, n - 1).map(lambda k: blob[:k])
    extensions = st.binary(min_size=1, max_size=64).map(lambda extra: blob + extra)
    splices = st.tuples(st.integers(0, n - 1), st.binary(min_size=1, max_size=8)).map(
        lambda p: blob[: p[0]] + p[1] + blob[p[0] :]
    )
    rest = blob[offset:]
    headers = st.one_of(
        st.integers(0, 255).filter(lambda v: v != 1).map(lambda v: bytes([v]) + blob[1:]),
        st.integers(0, 255)
        .filter(lambda v: v != 1)
        .map(lambda v: blob[:1] + bytes([v]) + blob[2:]),
        st.integers(0, 255)
        .filter(lambda v: v != 36)
        .map(lambda v: blob[:2] + bytes([v]) + blob[3:]),
        st.sampled_from([0, 1, 3, 1000, 0xFFFFFFFF]).map(
            lambda v: (
                BlobHeader(header.key_id, v).encode() + rest
                if v
                else blob[: offset - 4] + bytes(4) + rest
            )
        ),
        st.sampled_from([other_key_id, str(uuid.uuid4()), "-", "a" * 64]).map(
            lambda kid: BlobHeader(kid, header.key_version).encode() + rest
        ),
        st.text(min_size=1, max_size=20).map(
            lambda user: (
                BlobHeader(header.key_id, header.key_version, BlobKind.USER_KEY, user).encode()
                + rest
            )
        ),
    )
    return st.one_of(flips, truncations, extensions, splices, headers)


@FUZZ
@given(data=st.data(), with_key_id=st.booleans())
def test_mutated_blobs_are_invalid_ciphertext(
    service: KeyService, alice: Caller, fuzz: Fixture, data: st.DataObject, with_key_id: bool
) -> None:
    mutated = data.draw(_mutations(fuzz.blob, fuzz.other["KeyId"]))
    assume(mutated != fuzz.blob and 0 < len(mutated) <= 6144)
    _expect_failure(service, alice, fuzz, mutated, with_key_id)


def test_header_naming_another_key_with_key_id_is_incorrect_key(
    service: KeyService, alice: Caller
) -> None:
    fx = _fixture(service, alice)
    _, offset = parse_header(fx.blob)
    swapped = BlobHeader(fx.other["KeyId"], 1).encode() + fx.blob[offset:]
    request = {"CiphertextBlob": swapped, "EncryptionContext": fx.context}
    with pytest.raises(InvalidCiphertextError):
        service.call(alice, "Decrypt", request)
    with pytest.raises(InvalidCiphertextError):
        service.call(alice, "Decrypt", {**request, "KeyId": fx.other["KeyId"]})
    with pytest.raises(IncorrectKeyError):
        service.call(alice, "Decrypt", {**request, "KeyId": fx.key["KeyId"]})


def test_header_naming_a_missing_key_with_key_id_is_invalid_ciphertext(
    service: KeyService, alice: Caller
) -> None:
    fx = _fixture(service, alice)
    _, offset = parse_header(fx.blob)
    forged = BlobHeader(str(uuid.uuid4()), 1).encode() + fx.blob[offset:]
    with pytest.raises(InvalidCiphertextError):
        service.call(
            alice,
            "Decrypt",
            {"CiphertextBlob": forged, "EncryptionContext": fx.context, "KeyId": fx.key["KeyId"]},
        )


def test_blob_made_with_an_old_version_label_fails(service: KeyService, alice: Caller) -> None:
    fx = _fixture(service, alice)
    header, offset = parse_header(fx.blob)
    assert header.key_version == 2
    older = BlobHeader(header.key_id, 1).encode() + fx.blob[offset:]
    with pytest.raises(InvalidCiphertextError):
        service.call(alice, "Decrypt", {"CiphertextBlob": older, "EncryptionContext": fx.context})
    ok = service.call(
        alice, "Decrypt", {"CiphertextBlob": fx.blob, "EncryptionContext": fx.context}
    )
    assert ok["Plaintext"] == b"fuzz me"


def test_dry_run_ignoring_the_ciphertext_checks_only_the_keys(
    service: KeyService, alice: Caller
) -> None:
    key = create_key(service, alice)["KeyId"]
    other = create_key(service, alice)["KeyId"]
    modifiers = {"DryRun": True, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]}
    with pytest.raises(DryRunOperationError):
        service.call(alice, "Decrypt", {"KeyId": key, **modifiers})
    with pytest.raises(DryRunOperationError):
        service.call(
            alice, "ReEncrypt", {"SourceKeyId": key, "DestinationKeyId": other, **modifiers}
        )
    with pytest.raises(ValidationError, match="KeyId"):
        service.call(alice, "Decrypt", modifiers)
    service.call(alice, "DisableKey", {"KeyId": other})
    with pytest.raises(DisabledError):
        service.call(
            alice, "ReEncrypt", {"SourceKeyId": key, "DestinationKeyId": other, **modifiers}
        )
    with pytest.raises(ValidationError, match="ciphertextBlob"):
        service.call(alice, "Decrypt", {"KeyId": key, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]})


@pytest.mark.parametrize(
    "operation", ["Decrypt", "GenerateDataKey", "GenerateRandom"], ids=str.lower
)
def test_recipient_requests_are_refused_not_answered_in_plaintext(
    service: KeyService, alice: Caller, operation: str
) -> None:
    key = create_key(service, alice)["KeyId"]
    recipient = {
        "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
        "AttestationDocument": b"attestation",
    }
    request = {
        "Decrypt": {"CiphertextBlob": encrypt(service, alice, key)},
        "GenerateDataKey": {"KeyId": key, "KeySpec": "AES_256"},
        "GenerateRandom": {"NumberOfBytes": 32},
    }[operation]
    with pytest.raises(UnsupportedOperationError, match="Recipient"):
        service.call(alice, operation, {**request, "Recipient": recipient})
