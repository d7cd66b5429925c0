"""The API's hot path (api.hot_json over KeyService.hot_path) answers as the general path does.

Two apps over one warm key service: one over :class:`CachedBackend` (which offers the hot
path), one over a backend that only has ``call``. Every signed request gets the same status
and body from both (byte for byte for Decrypt and every error; for Encrypt and
GenerateDataKey, whose blobs and data keys are random, the same members in the same order,
the same key and material, blobs that open to the same plaintext) and queues the same
audit event. The requests are a table of plain and awkward bodies and, with hypothesis,
bodies made of valid, invalid and missing members.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.api import KmsApi, create_app
from strongroom.kms import KeyService
from strongroom.kms import service as service_module
from strongroom.kms.caller import AccessKey, Caller
from strongroom.server.runtime import CachedBackend
from strongroom.server.settings import HOT_OPERATIONS
from strongroom.testing.service import sqlite_key_service

HOST = "kms.test"
CONTEXT = {"app": "parity"}


class GeneralBackend:
    """The key service through ``call`` only (and :func:`_serve` turns its hot path off)."""

    def __init__(self, service: KeyService) -> None:
        self._service = service

    def lookup_access_key(self, access_key_id: str) -> AccessKey | None:
        return self._service.lookup_access_key(access_key_id)

    def call(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        return self._service.call(caller, operation, request, request_id)


@dataclass
class Apps:
    service: KeyService
    hot: KmsApi
    general: KmsApi
    credentials: dict[str, Credentials]
    values: dict[str, str]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    directory: Path = tmp_path_factory.mktemp("hot-json")
    with sqlite_key_service(directory) as service:
        credentials, callers = {}, {}
        for name in ("alice", "bob"):
            tenant = service.create_tenant(name).account_id
            record, secret = service.create_access_key(tenant, name, True)
            credentials[name] = Credentials(record.access_key_id, secret)
            access = service.lookup_access_key(record.access_key_id)
            assert access is not None
            callers[name] = access.caller
        alice = callers["alice"]
        meta = service.call(alice, "CreateKey", {})["KeyMetadata"]
        disabled = service.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
        bobs = service.call(callers["bob"], "CreateKey", {})["KeyMetadata"]
        service.call(alice, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": meta["KeyId"]})
        blob = service.call(
            alice,
            "Encrypt",
            {"KeyId": meta["KeyId"], "Plaintext": b"secret", "EncryptionContext": CONTEXT},
        )["CiphertextBlob"]
        disabled_blob = service.call(alice, "Encrypt", {"KeyId": disabled, "Plaintext": b"d"})[
            "CiphertextBlob"
        ]
        bobs_blob = service.call(
            callers["bob"], "Encrypt", {"KeyId": bobs["KeyId"], "Plaintext": b"b"}
        )["CiphertextBlob"]
        service.call(alice, "DisableKey", {"KeyId": disabled})
        values = {
            "key": meta["KeyId"],
            "arn": meta["Arn"],
            "alias": "alias/app",
            "alias-arn": meta["Arn"].split(":key/")[0] + ":alias/app",
            "disabled": disabled,
            "bobs-arn": bobs["Arn"],
            "blob": _b64(blob),
            "disabled-blob": _b64(disabled_blob),
            "bobs-blob": _b64(bobs_blob),
        }
        hot = create_app(CachedBackend(service, 3600.0), inline_operations=HOT_OPERATIONS)
        general = create_app(GeneralBackend(service), inline_operations=HOT_OPERATIONS)
        yield Apps(service, hot, general, credentials, values)


def _serve(apps: Apps, app: KmsApi, operation: str, body: bytes) -> tuple[int, bytes, list[Any]]:
    request = AWSRequest(
        method="POST",
        url=f"https://{HOST}/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"TrentService.{operation}",
            "Host": HOST,
        },
    )
    SigV4Auth(apps.credentials["alice"], "kms", "us-east-1").add_auth(request)
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    audit = apps.service.audit
    before = len(audit._pending)
    if app is apps.general:  # and no hot path inside the key service either
        with mock.patch.object(service_module, "HOT_CALLS", {}):
            status, answer, _, _ = app.serve_inline(headers, body, b"/", "127.0.0.1:1")
    else:
        status, answer, _, _ = app.serve_inline(headers, body, b"/", "127.0.0.1:1")
    events = [json.loads(raw) for raw in audit._pending[before:]]
    for event in events:
        event.pop("time", None)
        event.pop("requestId", None)
    return status, answer, events


def _open(apps: Apps, blob: str, context: object) -> dict[str, Any]:
    body: dict[str, Any] = {"CiphertextBlob": blob}
    if isinstance(context, dict) and context:
        body["EncryptionContext"] = context
    status, answer, _ = _serve(apps, apps.general, "Decrypt", json.dumps(body).encode())
    assert status == 200, answer
    result: dict[str, Any] = json.loads(answer)
    return result


def check_alike(apps: Apps, operation: str, body: bytes) -> None:
    _serve(apps, apps.general, operation, body)  # warms the caches the hot path reads
    status, answer, events = _serve(apps, apps.general, operation, body)
    hot_status, hot_answer, hot_events = _serve(apps, apps.hot, operation, body)
    assert (hot_status, hot_events) == (status, events), (hot_answer, answer)
    if status != 200 or operation == "Decrypt":
        assert hot_answer == answer
        return
    hot_fields, fields = json.loads(hot_answer), json.loads(answer)
    assert list(hot_fields) == list(fields)
    for member in ("KeyId", "KeyMaterialId", "EncryptionAlgorithm"):
        assert hot_fields.get(member) == fields.get(member)
    context = json.loads(body).get("EncryptionContext")
    opened = _open(apps, hot_fields["CiphertextBlob"], context)
    expected = (
        fields["Plaintext"] if operation == "GenerateDataKey" else json.loads(body)["Plaintext"]
    )
    if operation == "GenerateDataKey":
        assert len(base64.b64decode(hot_fields["Plaintext"])) == len(base64.b64decode(expected))
        assert opened["Plaintext"] == hot_fields["Plaintext"]
    else:
        assert opened["Plaintext"] == expected


TABLE = [
    ("Decrypt", '{"CiphertextBlob": "%(blob)s", "EncryptionContext": {"app": "parity"}}'),
    ("Decrypt", '{"CiphertextBlob": "%(blob)s"}'),
    (
        "Decrypt",
        '{"CiphertextBlob": "%(blob)s", "EncryptionContext": {"app": "parity"}, '
        '"KeyId": "%(alias-arn)s", "EncryptionAlgorithm": null}',
    ),
    (
        "Decrypt",
        '{"CiphertextBlob": "%(blob)s", "EncryptionContext": {"app": "parity"}, '
        '"KeyId": "%(disabled)s"}',
    ),
    ("Decrypt", '{"CiphertextBlob": "%(disabled-blob)s"}'),
    ("Decrypt", '{"CiphertextBlob": "%(bobs-blob)s"}'),
    (
        "Decrypt",
        '{"CiphertextBlob": "%(blob)s", "EncryptionContext": {"app": "parity"}, '
        '"GrantTokens": ["not-a-token"]}',
    ),
    ("Decrypt", '{"CiphertextBlob": "%(blob)s", "DryRun": true}'),
    (
        "Decrypt",
        '{"CiphertextBlob": "%(blob)s", "EncryptionContext": {"app": "parity"}, '
        '"EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}',
    ),
    ("Decrypt", '{"CiphertextBlob": "%(blob)s=", "EncryptionContext": {"app": "parity"}}'),
    ("Decrypt", '{"CiphertextBlob": "", "EncryptionContext": {"app": "parity"}}'),
    ("Decrypt", '{"CiphertextBlob": "%(blob)s", "EncryptionContext": {"app": 1}}'),
    ("Decrypt", '{"CiphertextBlob": "%(blob)s", "EncryptionContext": {"app": "parity"}, "X": 1}'),
    ("Decrypt", '["%(blob)s"]'),
    ("Encrypt", '{"KeyId": "%(key)s", "Plaintext": "cA=="}'),
    ("Encrypt", '{"KeyId": "%(alias)s", "Plaintext": "cA==", "EncryptionContext": {"a": "b"}}'),
    (
        "Encrypt",
        '{"KeyId": "%(arn)s", "Plaintext": "cA==", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}',
    ),
    ("Encrypt", '{"KeyId": "%(bobs-arn)s", "Plaintext": "cA=="}'),
    ("Encrypt", '{"KeyId": "%(disabled)s", "Plaintext": "cA=="}'),
    ("Encrypt", '{"KeyId": "%(key)s", "Plaintext": "c"}'),
    ("Encrypt", '{"KeyId": "%(key)s", "Plaintext": ""}'),
    ("Encrypt", '{"KeyId": "", "Plaintext": "cA=="}'),
    ("Encrypt", '{"KeyId": "%(key)s", "Plaintext": "cA==", "EncryptionAlgorithm": "SM2PKE"}'),
    ("GenerateDataKey", '{"KeyId": "%(key)s", "KeySpec": "AES_256"}'),
    ("GenerateDataKey", '{"KeyId": "%(alias)s", "NumberOfBytes": 12, "KeySpec": null}'),
    ("GenerateDataKey", '{"KeyId": "%(key)s", "NumberOfBytes": 12.0}'),
    ("GenerateDataKey", '{"KeyId": "%(key)s", "NumberOfBytes": true}'),
    ("GenerateDataKey", '{"KeyId": "%(key)s", "NumberOfBytes": 0}'),
    ("GenerateDataKey", '{"KeyId": "%(key)s", "KeySpec": "AES_512"}'),
    ("GenerateDataKey", '{"KeyId": "%(key)s", "KeySpec": "AES_128", "NumberOfBytes": 16}'),
    ("GenerateDataKey", '{"KeyId": "%(disabled)s", "KeySpec": "AES_256"}'),
    ("GenerateDataKey", '{"KeyId": "%(key)s"}'),
]


@pytest.mark.parametrize(("operation", "template"), TABLE)
def test_table_of_requests_answered_alike(apps: Apps, operation: str, template: str) -> None:
    check_alike(apps, operation, (template % apps.values).encode())


MEMBERS: dict[str, st.SearchStrategy[Any]] = {
    "CiphertextBlob": st.sampled_from(["blob", "disabled-blob", "bobs-blob", "", "AAAA", 7, None]),
    "Plaintext": st.sampled_from(["cA==", "", "c", "cGxhaW4=", 3, None]),
    "KeyId": st.sampled_from(["key", "arn", "alias", "alias-arn", "disabled", "bobs-arn", "", 1]),
    "EncryptionContext": st.sampled_from([CONTEXT, {}, {"x": "y"}, {"x": 2}, [], None]),
    "EncryptionAlgorithm": st.sampled_from(["SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "x", None]),
    "KeySpec": st.sampled_from(["AES_256", "AES_128", "AES_1", None]),
    "NumberOfBytes": st.sampled_from([1, 32, 1024, 1025, 0, -1, "8", 8.0, True, None]),
    "GrantTokens": st.sampled_from([[], ["t"], None]),
    "DryRun": st.sampled_from([True, False, None]),
    "Unknown": st.sampled_from([1, "x"]),
}


PLAIN: dict[str, dict[str, Any]] = {
    "Decrypt": {"CiphertextBlob": "blob", "EncryptionContext": CONTEXT},
    "Encrypt": {"KeyId": "key", "Plaintext": "cA=="},
    "GenerateDataKey": {"KeyId": "alias", "KeySpec": "AES_256"},
}
"""A request of each operation that succeeds; the property test changes a few members."""


@settings(max_examples=150, deadline=None)
@given(
    operation=st.sampled_from(sorted(PLAIN)),
    changes=st.dictionaries(st.sampled_from(sorted(MEMBERS)), st.booleans(), max_size=3),
    data=st.data(),
)
def test_any_change_of_members_is_answered_alike(
    apps: Apps, operation: str, changes: dict[str, bool], data: st.DataObject
) -> None:
    body = dict(PLAIN[operation])
    for member, remove in sorted(changes.items()):
        if remove:
            body.pop(member, None)
        else:
            body[member] = data.draw(MEMBERS[member], label=member)
    wire = {m: apps.values.get(v, v) if isinstance(v, str) else v for m, v in body.items()}
    check_alike(apps, operation, json.dumps(wire).encode())


@pytest.mark.parametrize(("operation", "template"), TABLE[:3] + TABLE[14:17] + TABLE[23:25])
def test_plain_requests_take_the_hot_path(
    apps: Apps, operation: str, template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[object] = []
    hot = apps.service.hot_path
    for name in ("encrypt", "decrypt", "generate_data_key"):
        method = getattr(hot, name)

        def spy(*args: Any, _method: Any = method) -> Any:
            answers.append(found := _method(*args))
            return found

        monkeypatch.setattr(hot, name, spy)
    body = (template % apps.values).encode()
    _serve(apps, apps.general, operation, body)  # warm
    status, _, _ = _serve(apps, apps.hot, operation, body)
    if status == 200:
        assert len(answers) == 1 and answers[0] is not None
    else:  # declined once (the key service does not try it again for the API)
        assert answers == [None]
