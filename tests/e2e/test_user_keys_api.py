"""``StrongroomUserKeys.<Op>`` against a real ``strongroom server``: boto3-signed raw requests.

Every operation, its validation errors, DryRun, key states and policies, the shred (a
destroyed user's blobs fail through the ordinary ``TrentService.Decrypt``, the others'
still decrypt), tenancy (another tenant's refusals are those of a key that does not exist,
and leak nothing), audit events, metrics labels and the larger request limit.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import pytest

from strongroom.testing.e2e_server import RunningServer
from strongroom.testing.http import (
    AwsCredentials,
    RawConnection,
    Reply,
    aws_error,
    request_counts,
    sign_headers,
)

REGION = "eu-west-1"
PREFIX = "StrongroomUserKeys."
Call = Callable[..., Reply]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def call(server: RunningServer) -> Call:
    """``call(credentials, "CreateUserKeys", {...})``: one signed raw request."""

    def send(
        credentials: AwsCredentials,
        operation: str,
        payload: dict[str, Any] | None = None,
        *,
        prefix: str = PREFIX,
        body: bytes | None = None,
    ) -> Reply:
        data = body if body is not None else json.dumps(payload or {}).encode()
        headers = sign_headers(
            server.endpoint, credentials, REGION, data, target=prefix + operation
        )
        with RawConnection(server.endpoint) as conn:
            return conn.post(data, headers)

    return send


def ok(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


def refused(reply: Reply, aws_type: str, status: int = 400) -> str:
    assert (reply.status, reply.json()["__type"]) == (status, aws_type), reply.body
    message: str = reply.json()["message"]
    return message


@pytest.fixture(scope="module")
def key(kms: Any) -> dict[str, Any]:
    meta: dict[str, Any] = kms.create_key(Description="users")["KeyMetadata"]
    kms.create_alias(AliasName="alias/users", TargetKeyId=meta["KeyId"])
    return meta


def test_every_operation_and_the_shred(
    call: Call, kms: Any, tenant_a: AwsCredentials, key: dict[str, Any]
) -> None:
    arn = key["Arn"]
    created = ok(
        call(tenant_a, "CreateUserKeys", {"KeyId": "alias/users", "UserIds": ["u1", "u2"]})
    )
    assert created == {"Created": 2, "KeyId": arn}
    again = ok(call(tenant_a, "CreateUserKeys", {"KeyId": arn, "UserIds": ["u2", "u3", "u3"]}))
    assert again["Created"] == 1  # u2 existed, u3 is named twice
    assert ok(call(tenant_a, "CountUserKeys", {"KeyId": key["KeyId"]})) == {
        "Count": 3,
        "KeyId": arn,
    }

    context = {"purpose": "profile"}
    generated = ok(
        call(
            tenant_a,
            "GenerateUserDataKey",
            {"KeyId": "alias/users", "UserId": "u1", "EncryptionContext": context},
        )
    )
    assert generated["KeyId"] == arn and len(base64.b64decode(generated["Plaintext"])) == 32
    short = ok(
        call(tenant_a, "GenerateUserDataKey", {"KeyId": arn, "UserId": "u2", "NumberOfBytes": 7})
    )
    assert len(base64.b64decode(short["Plaintext"])) == 7
    sealed = ok(
        call(tenant_a, "EncryptForUser", {"KeyId": arn, "UserId": "u1", "Plaintext": b64(b"hi")})
    )
    other = ok(
        call(tenant_a, "EncryptForUser", {"KeyId": arn, "UserId": "u2", "Plaintext": b64(b"u2")})
    )
    fresh = ok(  # a user with no key yet gets one on first use
        call(tenant_a, "EncryptForUser", {"KeyId": arn, "UserId": "u4", "Plaintext": b64(b"x")})
    )
    assert fresh["KeyId"] == arn

    # the ordinary Decrypt opens user blobs
    blob_u1 = base64.b64decode(sealed["CiphertextBlob"])
    assert kms.decrypt(CiphertextBlob=blob_u1)["Plaintext"] == b"hi"
    data_key = base64.b64decode(generated["CiphertextBlob"])
    opened = kms.decrypt(CiphertextBlob=data_key, EncryptionContext=context)
    assert opened["Plaintext"] == base64.b64decode(generated["Plaintext"])
    assert aws_error(kms.decrypt, CiphertextBlob=data_key).code == "InvalidCiphertextException"

    for name in ("DescribeUserKey", "UserKeyExists"):
        assert ok(call(tenant_a, name, {"KeyId": arn, "UserId": "u1"})) == {
            "Exists": True,
            "KeyId": arn,
        }
    assert ok(call(tenant_a, "DestroyUserKey", {"KeyId": "alias/users", "UserId": "u1"})) == {
        "Destroyed": True,
        "KeyId": arn,
    }
    assert (
        ok(call(tenant_a, "DestroyUserKey", {"KeyId": arn, "UserId": "u1"}))["Destroyed"] is False
    )
    assert ok(call(tenant_a, "UserKeyExists", {"KeyId": arn, "UserId": "u1"}))["Exists"] is False
    assert ok(call(tenant_a, "CountUserKeys", {"KeyId": arn}))["Count"] == 3

    # u1's blobs are dead through TrentService.Decrypt (and ReEncrypt); u2's still open
    for blob in (blob_u1, data_key):
        failure = aws_error(kms.decrypt, CiphertextBlob=blob, EncryptionContext=context)
        assert (failure.code, failure.status) == ("InvalidCiphertextException", 400)
    failure = aws_error(kms.re_encrypt, CiphertextBlob=blob_u1, DestinationKeyId=arn)
    assert failure.code == "InvalidCiphertextException"
    other_blob = base64.b64decode(other["CiphertextBlob"])
    assert kms.decrypt(CiphertextBlob=other_blob)["Plaintext"] == b"u2"
    # a new key for u1 does not bring the old data back
    ok(call(tenant_a, "CreateUserKeys", {"KeyId": arn, "UserIds": ["u1"]}))
    assert aws_error(kms.decrypt, CiphertextBlob=blob_u1).code == "InvalidCiphertextException"


@pytest.mark.parametrize(
    ("operation", "payload", "needle"),
    [
        ("CreateUserKeys", {"KeyId": "K"}, "Value null at 'userIds'"),
        ("CreateUserKeys", {"KeyId": "K", "UserIds": []}, "'userIds' failed"),
        (
            "CreateUserKeys",
            {"KeyId": "K", "UserIds": ["u"] * 10_001},
            "less than or equal to 10000",
        ),
        ("CreateUserKeys", {"KeyId": "K", "UserIds": ["ok", ""]}, "'userIds.2.member'"),
        ("CreateUserKeys", {"KeyId": "K", "UserIds": ["a\x00b"]}, "without NUL"),
        ("DestroyUserKey", {"KeyId": "K"}, "Value null at 'userId'"),
        ("DestroyUserKey", {"KeyId": "", "UserId": "u"}, "'keyId' failed"),
        ("DescribeUserKey", {"KeyId": "K", "UserId": "x" * 257}, "'userId' failed"),
        ("UserKeyExists", {"KeyId": "K", "UserId": "é" * 129}, "1 to 256 bytes"),
        ("CountUserKeys", {}, "Value null at 'keyId'"),
        ("EncryptForUser", {"KeyId": "K", "UserId": "u"}, "Value null at 'plaintext'"),
        ("EncryptForUser", {"KeyId": "K", "UserId": "u", "Plaintext": b64(b"x" * 4097)}, "4096"),
        ("GenerateUserDataKey", {"KeyId": "K", "UserId": "u", "NumberOfBytes": 0}, "Value '0'"),
        ("GenerateUserDataKey", {"KeyId": "K", "UserId": "u", "NumberOfBytes": 1025}, "1024"),
    ],
)
def test_validation(
    call: Call,
    tenant_a: AwsCredentials,
    key: dict[str, Any],
    operation: str,
    payload: dict[str, Any],
    needle: str,
) -> None:
    if payload.get("KeyId") == "K":
        payload = {**payload, "KeyId": key["Arn"]}
    message = refused(call(tenant_a, operation, payload), "ValidationException")
    assert message.startswith(("1 validation error detected", "2 validation errors detected"))
    assert needle in message


def test_wire_errors(call: Call, tenant_a: AwsCredentials, key: dict[str, Any]) -> None:
    arn = key["Arn"]
    wrong_type = call(tenant_a, "CreateUserKeys", {"KeyId": arn, "UserIds": "u1"})
    refused(wrong_type, "SerializationException")
    bad_b64 = call(tenant_a, "EncryptForUser", {"KeyId": arn, "UserId": "u", "Plaintext": "*"})
    refused(bad_b64, "SerializationException")
    refused(call(tenant_a, "CountUserKeys", body=b"{not json"), "SerializationException")
    refused(call(tenant_a, "ShredEverything", {"KeyId": arn}), "UnknownOperationException")
    # the two target prefixes do not mix
    refused(
        call(tenant_a, "CountUserKeys", {"KeyId": arn}, prefix="TrentService."),
        "UnknownOperationException",
    )
    refused(call(tenant_a, "Decrypt", {"CiphertextBlob": b64(b"x")}), "UnknownOperationException")
    missing = str(uuid.uuid4())
    message = refused(call(tenant_a, "CountUserKeys", {"KeyId": missing}), "NotFoundException")
    assert missing in message


def test_bad_signature_is_refused(server: RunningServer, tenant_a: AwsCredentials) -> None:
    body = json.dumps({"KeyId": "alias/users"}).encode()
    forged = AwsCredentials(tenant_a.access_key_id, "not-the-secret", tenant_a.account_id)
    headers = sign_headers(server.endpoint, forged, REGION, body, target=PREFIX + "CountUserKeys")
    with RawConnection(server.endpoint) as conn:
        reply = conn.post(body, headers)
    refused(reply, "InvalidSignatureException")


def test_dry_run_changes_nothing(call: Call, tenant_a: AwsCredentials, key: dict[str, Any]) -> None:
    arn = key["Arn"]
    ok(call(tenant_a, "CreateUserKeys", {"KeyId": arn, "UserIds": ["dry-1"]}))
    count = ok(call(tenant_a, "CountUserKeys", {"KeyId": arn}))["Count"]
    for operation, payload in [
        ("DestroyUserKey", {"UserId": "dry-1"}),
        ("CreateUserKeys", {"UserIds": ["dry-2", "dry-3"]}),
        ("EncryptForUser", {"UserId": "dry-4", "Plaintext": b64(b"x")}),
        ("EncryptForUser", {"UserId": "dry-1", "Plaintext": b64(b"x")}),
        ("GenerateUserDataKey", {"UserId": "dry-1"}),
    ]:
        reply = call(
            tenant_a, operation, {"KeyId": arn, "DryRun": True, **cast(dict[str, Any], payload)}
        )
        message = refused(reply, "DryRunOperationException", 400)
        assert "DryRun" in message and "Plaintext" not in reply.json()
    assert ok(call(tenant_a, "CountUserKeys", {"KeyId": arn}))["Count"] == count
    assert ok(call(tenant_a, "UserKeyExists", {"KeyId": arn, "UserId": "dry-1"}))["Exists"]


def test_key_kind_state_and_policy(call: Call, kms: Any, tenant_a: AwsCredentials) -> None:
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    message = refused(
        call(tenant_a, "CreateUserKeys", {"KeyId": signing["Arn"], "UserIds": ["u"]}),
        "InvalidKeyUsageException",
    )
    assert "only symmetric encryption keys" in message

    disabled = kms.create_key()["KeyMetadata"]["Arn"]
    ok(call(tenant_a, "CreateUserKeys", {"KeyId": disabled, "UserIds": ["u"]}))
    kms.disable_key(KeyId=disabled)
    payload = {"KeyId": disabled, "UserId": "u", "Plaintext": b64(b"x")}
    refused(call(tenant_a, "EncryptForUser", payload), "DisabledException")
    # forgetting a user never waits for the key to be enabled
    assert ok(call(tenant_a, "DestroyUserKey", {"KeyId": disabled, "UserId": "u"}))["Destroyed"]

    root = f"arn:aws:iam::{tenant_a.account_id}:root"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Principal": {"AWS": root},
                "Action": ["kms:DestroyUserKey", "kms:GenerateDataKey"],
                "Resource": "*",
            },
        ],
    }
    guarded = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    ok(call(tenant_a, "CreateUserKeys", {"KeyId": guarded, "UserIds": ["u"]}))
    ok(call(tenant_a, "EncryptForUser", {**payload, "KeyId": guarded}))  # kms:Encrypt allowed
    denied = refused(
        call(tenant_a, "DestroyUserKey", {"KeyId": guarded, "UserId": "u"}), "AccessDeniedException"
    )
    assert "kms:DestroyUserKey" in denied and "explicit deny" in denied
    denied = refused(
        call(tenant_a, "GenerateUserDataKey", {"KeyId": guarded, "UserId": "u"}),
        "AccessDeniedException",
    )
    assert "kms:GenerateDataKey" in denied
    assert ok(call(tenant_a, "UserKeyExists", {"KeyId": guarded, "UserId": "u"}))["Exists"]


OPERATIONS: list[tuple[str, dict[str, Any]]] = [
    ("GenerateUserDataKey", {"UserId": "victim"}),
    ("EncryptForUser", {"UserId": "victim", "Plaintext": b64(b"x")}),
    ("CreateUserKeys", {"UserIds": ["victim"]}),
    ("DestroyUserKey", {"UserId": "victim"}),
    ("DescribeUserKey", {"UserId": "victim"}),
    ("UserKeyExists", {"UserId": "victim"}),
    ("CountUserKeys", {}),
]


def test_another_tenant_is_refused_and_learns_nothing(
    call: Call, kms: Any, tenant_a: AwsCredentials, tenant_b: AwsCredentials
) -> None:
    meta = kms.create_key(Description="a-secret-description")["KeyMetadata"]
    alias = f"alias/a-secret-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    ok(call(tenant_a, "CreateUserKeys", {"KeyId": meta["Arn"], "UserIds": ["victim"]}))
    sealed = ok(
        call(
            tenant_a,
            "EncryptForUser",
            {"KeyId": meta["Arn"], "UserId": "victim", "Plaintext": b64(b"A's")},
        )
    )
    missing = str(uuid.uuid4())
    forms = {
        "id": (meta["KeyId"], missing, "NotFoundException"),
        "alias": (alias, f"alias/a-secret-{missing[:8]}", "NotFoundException"),
        "arn": (meta["Arn"], meta["Arn"].replace(meta["KeyId"], missing), "AccessDeniedException"),
        "alias_arn": (
            f"arn:aws:kms:{REGION}:{tenant_a.account_id}:{alias}",
            f"arn:aws:kms:{REGION}:{tenant_a.account_id}:alias/a-secret-{missing[:8]}",
            "AccessDeniedException",
        ),
    }
    for operation, extra in OPERATIONS:
        for form, (real, fake, expected) in forms.items():
            reply = call(tenant_b, operation, {"KeyId": real, **extra})
            message = refused(reply, expected)
            fake_message = refused(call(tenant_b, operation, {"KeyId": fake, **extra}), expected)
            # the same answer as for a key of A that does not exist: no existence oracle
            assert message.replace(real, "<ref>") == fake_message.replace(fake, "<ref>"), (
                operation,
                form,
            )
            sent = real
            for secret in ("a-secret-description", meta["KeyId"], tenant_a.account_id, alias):
                if secret not in sent:
                    assert secret not in reply.body.decode(), (operation, form, secret)
    # A's user key and data are untouched
    assert ok(call(tenant_a, "UserKeyExists", {"KeyId": meta["Arn"], "UserId": "victim"}))["Exists"]
    assert ok(call(tenant_a, "CountUserKeys", {"KeyId": meta["Arn"]}))["Count"] == 1
    blob = base64.b64decode(sealed["CiphertextBlob"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"A's"


def audit_events(server: RunningServer, request_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The audit events of these requests, once the server has flushed them (<= 10 s)."""
    from strongroom.cli.context import open_store_for

    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 10
    store = open_store_for(server.data_dir)
    try:
        while True:
            records = store.read(lambda tx: tx.read_audit(0, 100_000))
            for record in records:
                event = json.loads(record.body)
                if event.get("requestId") in request_ids:
                    found[event["requestId"]] = event
            if len(found) == len(request_ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.1)  # polling for the server's flush, bounded by the deadline
    finally:
        store.close()


def test_audit_and_metrics(
    server: RunningServer, call: Call, tenant_a: AwsCredentials, key: dict[str, Any]
) -> None:
    before = request_counts(server.endpoint)
    arn = key["Arn"]
    created = call(tenant_a, "CreateUserKeys", {"KeyId": arn, "UserIds": ["audited"]})
    destroyed = call(tenant_a, "DestroyUserKey", {"KeyId": arn, "UserId": "audited"})
    dry = call(tenant_a, "DestroyUserKey", {"KeyId": arn, "UserId": "audited", "DryRun": True})
    ids = {r.headers["x-amzn-requestid"]: r for r in (created, destroyed, dry)}
    events = audit_events(server, set(ids))
    assert len(events) == 3
    by_op = {(e["operation"], e["result"]): e for e in events.values()}
    assert by_op[("CreateUserKeys", "Success")]["userKeysCreated"] == 1
    assert by_op[("DestroyUserKey", "Success")]["userId"] == "audited"
    assert by_op[("DestroyUserKey", "Success")]["keyArn"] == arn
    assert ("DestroyUserKey", "DryRunOperationException") in by_op
    after = request_counts(server.endpoint)
    assert after[("CreateUserKeys", "200")] >= before.get(("CreateUserKeys", "200"), 0) + 1
    assert after[("DestroyUserKey", "400")] >= before.get(("DestroyUserKey", "400"), 0) + 1


def test_create_takes_a_large_batch_but_not_more_than_the_limit(
    call: Call, tenant_a: AwsCredentials, key: dict[str, Any]
) -> None:
    ids = [f"bulk-{uuid.uuid4()}" for _ in range(10_000)]  # ~470 KB: above 256 KiB
    reply = call(tenant_a, "CreateUserKeys", {"KeyId": key["Arn"], "UserIds": ids})
    assert ok(reply)["Created"] == 10_000
    huge = json.dumps({"KeyId": key["Arn"], "UserIds": ["x" * 256] * 9_000}).encode()
    assert len(huge) > 2 * 1024 * 1024
    refused(call(tenant_a, "CreateUserKeys", body=huge), "RequestEntityTooLargeException", 413)
