"""The hot path of Encrypt/Decrypt/GenerateDataKey answers exactly as the general path does.

Every request of the table runs twice on one warm key service: once as
``KeyService.call`` serves it (the hot path first) and once with the hot path turned off.
Both must give the same response (or the same error type and message) and queue the same
audit event. Where the request is plain and the caches are warm the hot path must have
answered it; everywhere else it must have declined (returned ``None``) before any effect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from strongroom.crypto import parse_header
from strongroom.errors import StrongroomError
from strongroom.kms import Caller, KeyService
from strongroom.kms import service as service_module
from strongroom.kms.hot_path import HOT_OPERATIONS

REQUEST_ID = "0f0f0f0f-1111-2222-3333-444455556666"
CONTEXT = {"purpose": "parity", "tenant": "alice"}


def _caller(service: KeyService, account: str, name: str, admin: bool = False) -> Caller:
    record, _ = service.create_access_key(account, user_name=name, is_admin=admin)
    access = service.lookup_access_key(record.access_key_id)
    assert access is not None
    return access.caller


def _only(*callers: Caller, deny: str | None = None) -> str:
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Principal": {"AWS": [c.principal_arn for c in callers]},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if deny:
        statements.append({"Effect": "Deny", "Principal": "*", "Action": deny, "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@dataclass
class World:
    service: KeyService
    callers: dict[str, Caller]
    keys: dict[str, str]
    arns: dict[str, str]
    blobs: dict[str, bytes]
    token: str


@pytest.fixture
def world(sqlite_service: KeyService) -> Iterator[World]:
    service = sqlite_service
    alice_tenant = service.create_tenant("alice").account_id
    bob_tenant = service.create_tenant("bob").account_id
    alice = _caller(service, alice_tenant, "alice", admin=True)
    carol = _caller(service, alice_tenant, "carol")
    bob = _caller(service, bob_tenant, "bob", admin=True)
    callers = {"alice": alice, "carol": carol, "bob": bob}

    def create(caller: Caller, **request: Any) -> tuple[str, str]:
        meta = service.call(caller, "CreateKey", request)["KeyMetadata"]
        return str(meta["KeyId"]), str(meta["Arn"])

    made = {
        "open": create(alice),
        "disabled": create(alice),
        "pending": create(alice),
        "restricted": create(alice, Policy=_only(alice)),
        "no-decrypt": create(alice, Policy=_only(alice, carol, deny="kms:Decrypt")),
        "mrk": create(alice, MultiRegion=True),
        "hmac": create(alice, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"),
        "bobs": create(bob),
    }
    keys = {name: key for name, (key, _) in made.items()}
    arns = {name: arn for name, (_, arn) in made.items()}
    service.call(alice, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": keys["open"]})
    token = service.call(
        alice,
        "CreateGrant",
        {
            "KeyId": keys["restricted"],
            "GranteePrincipal": carol.principal_arn,
            "Operations": ["Encrypt", "Decrypt", "GenerateDataKey"],
        },
    )["GrantToken"]
    blobs = {}
    for name in ("open", "disabled", "pending", "restricted", "no-decrypt", "mrk"):
        owner = alice
        request = {"KeyId": keys[name], "Plaintext": b"secret", "EncryptionContext": CONTEXT}
        blobs[name] = service.call(owner, "Encrypt", request)["CiphertextBlob"]
    blobs["bobs"] = service.call(bob, "Encrypt", {"KeyId": keys["bobs"], "Plaintext": b"b"})[
        "CiphertextBlob"
    ]
    service.call(alice, "DisableKey", {"KeyId": keys["disabled"]})
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": keys["pending"], "PendingWindowInDays": 7})
    yield World(service, callers, keys, arns, blobs, str(token))


# (caller, operation, request, does the hot path answer it); "@blob:x", "@key:x" and "@arn:x"
# name the world's blob, key id and key ARN of key "x", "@token" its grant token
Case = tuple[str, str, dict[str, Any], bool]
EC = {"EncryptionContext": CONTEXT}
CASES: dict[str, Case] = {
    "decrypt": ("alice", "Decrypt", {"CiphertextBlob": "@blob:open"}, False),
    "decrypt with context": ("alice", "Decrypt", {"CiphertextBlob": "@blob:open", **EC}, True),
    "decrypt, wrong context": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:open", "EncryptionContext": {"purpose": "x"}},
        False,
    ),
    "decrypt naming its key id": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:open", **EC, "KeyId": "@key:open"},
        True,
    ),
    "decrypt naming its alias and algorithm": (
        "alice",
        "Decrypt",
        {
            "CiphertextBlob": "@blob:open",
            **EC,
            "KeyId": "alias/app",
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        True,
    ),
    "decrypt naming another key": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:open", **EC, "KeyId": "@key:restricted"},
        False,
    ),
    "decrypt naming an unknown key": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:open", "KeyId": "alias/none"},
        False,
    ),
    "decrypt under a disabled key": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:disabled", **EC},
        False,
    ),
    "decrypt under a key pending deletion": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:pending", **EC},
        False,
    ),
    "decrypt another tenant's blob": ("alice", "Decrypt", {"CiphertextBlob": "@blob:bobs"}, False),
    "decrypt, policy denies": (
        "carol",
        "Decrypt",
        {"CiphertextBlob": "@blob:no-decrypt", **EC},
        False,
    ),
    "decrypt through a grant": (
        "carol",
        "Decrypt",
        {"CiphertextBlob": "@blob:restricted", **EC},
        False,
    ),
    "decrypt with a grant token": (
        "carol",
        "Decrypt",
        {"CiphertextBlob": "@blob:restricted", **EC, "GrantTokens": ["@token"]},
        False,
    ),
    "decrypt a multi-Region key's blob": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:mrk", **EC},
        True,
    ),
    "decrypt, dry run": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:open", "DryRun": True},
        False,
    ),
    "decrypt, a bad blob": ("alice", "Decrypt", {"CiphertextBlob": b"\x01" * 80}, False),
    "decrypt, a cut blob": ("alice", "Decrypt", {"CiphertextBlob": "@cut:open", **EC}, False),
    "decrypt, asymmetric algorithm": (
        "alice",
        "Decrypt",
        {"CiphertextBlob": "@blob:open", "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"},
        False,
    ),
    "encrypt by key id": ("alice", "Encrypt", {"KeyId": "@key:open", "Plaintext": b"p"}, True),
    "encrypt by key ARN with context": (
        "alice",
        "Encrypt",
        {"KeyId": "@arn:open", "Plaintext": b"p", **EC},
        True,
    ),
    "encrypt by alias ARN": (
        "alice",
        "Encrypt",
        {"KeyId": "@alias-arn:app", "Plaintext": b"p", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        True,
    ),
    "encrypt by a multi-Region key": (
        "alice",
        "Encrypt",
        {"KeyId": "@key:mrk", "Plaintext": b"p"},
        True,
    ),
    "encrypt under another tenant's key ARN": (
        "alice",
        "Encrypt",
        {"KeyId": "@arn:bobs", "Plaintext": b"p"},
        False,
    ),
    "encrypt under another tenant's key id": (
        "alice",
        "Encrypt",
        {"KeyId": "@key:bobs", "Plaintext": b"p"},
        False,
    ),
    "encrypt under a disabled key": (
        "alice",
        "Encrypt",
        {"KeyId": "@key:disabled", "Plaintext": b"p"},
        False,
    ),
    "encrypt under a key pending deletion": (
        "alice",
        "Encrypt",
        {"KeyId": "@key:pending", "Plaintext": b"p"},
        False,
    ),
    "encrypt under an HMAC key": (
        "alice",
        "Encrypt",
        {"KeyId": "@key:hmac", "Plaintext": b"p"},
        False,
    ),
    "encrypt through a grant": (
        "carol",
        "Encrypt",
        {"KeyId": "@key:restricted", "Plaintext": b"p"},
        False,
    ),
    "encrypt, empty plaintext": (
        "alice",
        "Encrypt",
        {"KeyId": "@key:open", "Plaintext": b""},
        False,
    ),
    "encrypt, no key": ("alice", "Encrypt", {"Plaintext": b"p"}, False),
    "encrypt, a context of numbers": (
        "alice",
        "Encrypt",
        {"KeyId": "@key:open", "Plaintext": b"p", "EncryptionContext": {"a": 1}},
        False,
    ),
    "data key by spec": (
        "alice",
        "GenerateDataKey",
        {"KeyId": "@key:open", "KeySpec": "AES_256"},
        True,
    ),
    "data key by size, alias, context": (
        "alice",
        "GenerateDataKey",
        {"KeyId": "alias/app", "NumberOfBytes": 7, **EC},
        True,
    ),
    "data key, spec and size": (
        "alice",
        "GenerateDataKey",
        {"KeyId": "@key:open", "KeySpec": "AES_128", "NumberOfBytes": 16},
        False,
    ),
    "data key, neither": ("alice", "GenerateDataKey", {"KeyId": "@key:open"}, False),
    "data key, too large": (
        "alice",
        "GenerateDataKey",
        {"KeyId": "@key:open", "NumberOfBytes": 1025},
        False,
    ),
    "data key with a grant token": (
        "carol",
        "GenerateDataKey",
        {"KeyId": "@key:restricted", "KeySpec": "AES_256", "GrantTokens": ["@token"]},
        False,
    ),
    "data key under a disabled key": (
        "alice",
        "GenerateDataKey",
        {"KeyId": "@key:disabled", "KeySpec": "AES_256"},
        False,
    ),
    "data key, unknown alias": (
        "alice",
        "GenerateDataKey",
        {"KeyId": "alias/none", "KeySpec": "AES_256"},
        False,
    ),
}


def _resolve(world: World, value: Any) -> Any:
    """A case's value with its ``@`` references to the world's keys, blobs and token."""
    if isinstance(value, list):
        return [_resolve(world, item) for item in value]
    if not isinstance(value, str) or not value.startswith("@"):
        return value
    if value == "@token":
        return world.token
    kind, _, name = value[1:].partition(":")
    if kind == "blob":
        return world.blobs[name]
    if kind == "cut":
        return world.blobs[name][:-1]
    if kind == "key":
        return world.keys[name]
    if kind == "alias-arn":
        return world.arns["open"].split(":key/")[0] + ":alias/" + name
    return world.arns[name]


def _run(world: World, caller: Caller, operation: str, request: dict[str, Any]) -> Any:
    audit = world.service.audit
    before = len(audit._pending)
    try:
        outcome: Any = ("ok", world.service.call(caller, operation, request, REQUEST_ID))
    except StrongroomError as exc:
        outcome = ("error", type(exc), exc.aws_type, str(exc))
    events = [json.loads(raw) for raw in audit._pending[before:]]
    for event in events:
        event.pop("time", None)
    return outcome, events


def _plaintext_of(world: World, caller: Caller, blob: bytes, request: dict[str, Any]) -> bytes:
    opened = world.service.call(
        caller,
        "Decrypt",
        {"CiphertextBlob": blob, "EncryptionContext": request.get("EncryptionContext")},
    )
    return bytes(opened["Plaintext"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_hot_and_general_paths_answer_alike(
    world: World, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    who, operation, spec, answered = CASES[case]
    caller = world.callers[who]
    request = {member: _resolve(world, value) for member, value in spec.items()}
    answers: list[object] = []
    hot = world.service.hot_path
    for name in ("encrypt", "decrypt", "generate_data_key"):
        method = getattr(hot, name)

        def spy(*args: Any, _method: Any = method) -> Any:
            answers.append(found := _method(*args))
            return found

        monkeypatch.setattr(hot, name, spy)
    with monkeypatch.context() as general_only:
        general_only.setattr(service_module, "HOT_CALLS", {})
        _run(world, caller, operation, request)  # warms the caches the hot path reads
        general = _run(world, caller, operation, request)
    assert answers == []
    first = _run(world, caller, operation, request)
    if answered:
        assert len(answers) == 1 and answers[0] is not None
    else:  # declined by the request adapter, or by the hot path itself
        assert all(answer is None for answer in answers)
    (kind, *result), events = first
    (general_kind, *general_result), general_events = general
    assert events == general_events  # the same audit event, field for field
    assert kind == general_kind, (first, general)
    if kind == "error":
        assert result == general_result
        return
    response, expected = result[0], general_result[0]
    assert list(response) == list(expected)  # the same members in the same order
    for member in ("KeyId", "KeyMaterialId", "EncryptionAlgorithm"):
        assert response.get(member) == expected.get(member)
    if operation == "Decrypt":
        assert response == expected
        return
    blob, general_blob = response["CiphertextBlob"], expected["CiphertextBlob"]
    assert parse_header(blob)[0] == parse_header(general_blob)[0]
    plain = request.get("Plaintext") or response["Plaintext"]
    assert _plaintext_of(world, caller, blob, request) == plain
    assert len(response.get("Plaintext", b"")) == len(expected.get("Plaintext", b""))


def test_every_hot_operation_has_cases() -> None:
    assert {operation for _, operation, _, hot in CASES.values() if hot} == set(HOT_OPERATIONS)
