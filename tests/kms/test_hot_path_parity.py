"""The hot path of Encrypt/Decrypt/GenerateDataKey answers exactly as the general path does.

Every request of the table runs twice on one warm key service: once as
``KeyService.call`` serves it (the hot path first) and once with the hot path turned off.
Both must give the same response (or the same error type and message) and queue the same
audit event. Where the request is plain and the caches are warm the hot path must have
answered it; everywhere else it must have declined (returned ``None``) before any effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
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


Build = Callable[[World], dict[str, Any]]
# (caller, operation, request, does the hot path answer it)
CASES: dict[str, tuple[str, str, Build, bool]] = {
    "decrypt": ("alice", "Decrypt", lambda w: {"CiphertextBlob": w.blobs["open"]}, False),
    "decrypt with context": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["open"], "EncryptionContext": CONTEXT},
        True,
    ),
    "decrypt, wrong context": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["open"], "EncryptionContext": {"purpose": "x"}},
        False,
    ),
    "decrypt naming its key id": (
        "alice",
        "Decrypt",
        lambda w: {
            "CiphertextBlob": w.blobs["open"],
            "EncryptionContext": CONTEXT,
            "KeyId": w.keys["open"],
        },
        True,
    ),
    "decrypt naming its alias and algorithm": (
        "alice",
        "Decrypt",
        lambda w: {
            "CiphertextBlob": w.blobs["open"],
            "EncryptionContext": CONTEXT,
            "KeyId": "alias/app",
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        True,
    ),
    "decrypt naming another key": (
        "alice",
        "Decrypt",
        lambda w: {
            "CiphertextBlob": w.blobs["open"],
            "EncryptionContext": CONTEXT,
            "KeyId": w.keys["restricted"],
        },
        False,
    ),
    "decrypt naming an unknown key": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["open"], "KeyId": "alias/none"},
        False,
    ),
    "decrypt under a disabled key": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["disabled"], "EncryptionContext": CONTEXT},
        False,
    ),
    "decrypt under a key pending deletion": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["pending"], "EncryptionContext": CONTEXT},
        False,
    ),
    "decrypt another tenant's blob": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["bobs"]},
        False,
    ),
    "decrypt, policy denies": (
        "carol",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["no-decrypt"], "EncryptionContext": CONTEXT},
        False,
    ),
    "decrypt through a grant": (
        "carol",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["restricted"], "EncryptionContext": CONTEXT},
        False,
    ),
    "decrypt with a grant token": (
        "carol",
        "Decrypt",
        lambda w: {
            "CiphertextBlob": w.blobs["restricted"],
            "EncryptionContext": CONTEXT,
            "GrantTokens": [w.token],
        },
        False,
    ),
    "decrypt a multi-Region key's blob": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["mrk"], "EncryptionContext": CONTEXT},
        True,
    ),
    "decrypt, dry run": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["open"], "DryRun": True},
        False,
    ),
    "decrypt, a bad blob": ("alice", "Decrypt", lambda w: {"CiphertextBlob": b"\x01" * 80}, False),
    "decrypt, a cut blob": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["open"][:-1], "EncryptionContext": CONTEXT},
        False,
    ),
    "decrypt, asymmetric algorithm": (
        "alice",
        "Decrypt",
        lambda w: {"CiphertextBlob": w.blobs["open"], "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"},
        False,
    ),
    "encrypt by key id": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.keys["open"], "Plaintext": b"p"},
        True,
    ),
    "encrypt by key ARN with context": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.arns["open"], "Plaintext": b"p", "EncryptionContext": CONTEXT},
        True,
    ),
    "encrypt by alias ARN": (
        "alice",
        "Encrypt",
        lambda w: {
            "KeyId": w.arns["open"].split(":key/")[0] + ":alias/app",
            "Plaintext": b"p",
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        True,
    ),
    "encrypt by a multi-Region key": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.keys["mrk"], "Plaintext": b"p"},
        True,
    ),
    "encrypt under another tenant's key ARN": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.arns["bobs"], "Plaintext": b"p"},
        False,
    ),
    "encrypt under another tenant's key id": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.keys["bobs"], "Plaintext": b"p"},
        False,
    ),
    "encrypt under a disabled key": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.keys["disabled"], "Plaintext": b"p"},
        False,
    ),
    "encrypt under a key pending deletion": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.keys["pending"], "Plaintext": b"p"},
        False,
    ),
    "encrypt under an HMAC key": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.keys["hmac"], "Plaintext": b"p"},
        False,
    ),
    "encrypt through a grant": (
        "carol",
        "Encrypt",
        lambda w: {"KeyId": w.keys["restricted"], "Plaintext": b"p"},
        False,
    ),
    "encrypt, empty plaintext": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.keys["open"], "Plaintext": b""},
        False,
    ),
    "encrypt, no key": ("alice", "Encrypt", lambda w: {"Plaintext": b"p"}, False),
    "encrypt, a context of numbers": (
        "alice",
        "Encrypt",
        lambda w: {"KeyId": w.keys["open"], "Plaintext": b"p", "EncryptionContext": {"a": 1}},
        False,
    ),
    "data key by spec": (
        "alice",
        "GenerateDataKey",
        lambda w: {"KeyId": w.keys["open"], "KeySpec": "AES_256"},
        True,
    ),
    "data key by size, alias, context": (
        "alice",
        "GenerateDataKey",
        lambda w: {"KeyId": "alias/app", "NumberOfBytes": 7, "EncryptionContext": CONTEXT},
        True,
    ),
    "data key, spec and size": (
        "alice",
        "GenerateDataKey",
        lambda w: {"KeyId": w.keys["open"], "KeySpec": "AES_128", "NumberOfBytes": 16},
        False,
    ),
    "data key, neither": ("alice", "GenerateDataKey", lambda w: {"KeyId": w.keys["open"]}, False),
    "data key, too large": (
        "alice",
        "GenerateDataKey",
        lambda w: {"KeyId": w.keys["open"], "NumberOfBytes": 1025},
        False,
    ),
    "data key with a grant token": (
        "carol",
        "GenerateDataKey",
        lambda w: {"KeyId": w.keys["restricted"], "KeySpec": "AES_256", "GrantTokens": [w.token]},
        False,
    ),
    "data key under a disabled key": (
        "alice",
        "GenerateDataKey",
        lambda w: {"KeyId": w.keys["disabled"], "KeySpec": "AES_256"},
        False,
    ),
    "data key, unknown alias": (
        "alice",
        "GenerateDataKey",
        lambda w: {"KeyId": "alias/none", "KeySpec": "AES_256"},
        False,
    ),
}


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
    who, operation, build, answered = CASES[case]
    caller, request = world.callers[who], build(world)
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
