"""The ASGI app over real HTTP: boto3 and raw requests against uvicorn on 127.0.0.1."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from strongroom.api import ShapeCodec

JSON_11 = "application/x-amz-json-1.1"


def signed_post(
    server: Any,
    body: bytes,
    target: str | None = "TrentService.Encrypt",
    content_type: str | None = JSON_11,
    extra_headers: dict[str, str] | None = None,
    service: str = "kms",
    secret: str | None = None,
    sign: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` to ``/``, signed by botocore's SigV4Auth, and return the response."""
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=server.url + "/", data=body, headers=headers)
    if sign:
        credentials = Credentials(server.access_key_id, secret or server.secret)
        SigV4Auth(credentials, service, server.region).add_auth(request)
    send_headers = dict(request.headers.items())
    send_headers.update(extra_headers or {})
    return raw_request(server.port, "POST", "/", body, send_headers)


def raw_request(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


def error_of(body: bytes) -> tuple[str, str]:
    parsed = json.loads(body)
    return parsed["__type"], parsed["message"]


# --- boto3 happy paths ---------------------------------------------------------------


def test_generate_random_returns_decoded_bytes(kms: Any) -> None:
    response = kms.generate_random(NumberOfBytes=48)
    assert isinstance(response["Plaintext"], bytes)
    assert len(response["Plaintext"]) == 48
    uuid.UUID(response["ResponseMetadata"]["RequestId"])


def test_encrypt_decrypt_round_trip_of_every_byte(kms: Any, server: Any) -> None:
    plaintext = bytes(range(256)) * 4
    encrypted = kms.encrypt(KeyId="alias/app", Plaintext=plaintext)
    assert encrypted["CiphertextBlob"] == server.backend.CT_PREFIX + plaintext
    _, operation, request, request_id = server.backend.calls[-1]
    assert operation == "Encrypt"
    assert request == {"KeyId": "alias/app", "Plaintext": plaintext}
    assert request_id == encrypted["ResponseMetadata"]["RequestId"]
    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    assert decrypted["Plaintext"] == plaintext


def test_caller_carries_tenant_region_and_key(server: Any, client_factory: Any) -> None:
    client = client_factory(server.url, region="ap-southeast-2")
    client.encrypt(KeyId="k1", Plaintext=b"x")
    caller = server.backend.calls[-1][0]
    assert caller.tenant == server.account
    assert caller.region == "ap-southeast-2"
    assert caller.access_key_id == server.access_key_id
    assert caller.principal_arn.endswith(":user/alice")


# --- authentication failures through boto3 ---------------------------------------------


def test_wrong_secret_is_invalid_signature(server: Any, client_factory: Any) -> None:
    client = client_factory(server.url, secret="not-the-secret")
    with pytest.raises(ClientError) as info:
        client.generate_random(NumberOfBytes=8)
    error = info.value.response
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["Error"]["Message"].startswith("The request signature we calculated")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400  # as AWS KMS answers it
    uuid.UUID(error["ResponseMetadata"]["RequestId"])


def test_unknown_access_key_is_unrecognized(server: Any, client_factory: Any) -> None:
    client = client_factory(server.url, key_id="AKIANOSUCHKEY0000000")
    with pytest.raises(ClientError) as info:
        client.generate_random(NumberOfBytes=8)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert info.value.response["Error"]["Message"] == (
        "The security token included in the request is invalid."
    )


def test_session_token_is_refused(server: Any, client_factory: Any) -> None:
    client = client_factory(server.url, token="FwoGZXIvYXdzEXAMPLETOKEN")
    with pytest.raises(ClientError) as info:
        client.generate_random(NumberOfBytes=8)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


@pytest.mark.parametrize(
    ("offset", "words"), [(-1200.0, "Signature not yet current"), (1200.0, "Signature expired")]
)
def test_clock_skew_is_refused(kms: Any, clock: Any, offset: float, words: str) -> None:
    clock.offset = offset
    with pytest.raises(ClientError) as info:
        kms.generate_random(NumberOfBytes=8)
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["Error"]["Message"].startswith(words)


def test_skew_within_fifteen_minutes_is_accepted(kms: Any, clock: Any) -> None:
    clock.offset = 800.0
    assert len(kms.generate_random(NumberOfBytes=8)["Plaintext"]) == 8


def test_missing_authentication_over_urllib(server: Any) -> None:
    request = urllib.request.Request(
        server.url + "/",
        data=b"{}",
        method="POST",
        headers={"Content-Type": JSON_11, "X-Amz-Target": "TrentService.GenerateRandom"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    with info.value as response:
        assert response.status == 400
        uuid.UUID(response.headers["x-amzn-RequestId"])
        assert error_of(response.read()) == (
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )


def test_sts_signature_is_not_accepted_for_kms(server: Any) -> None:
    status, _, body = signed_post(server, b"{}", service="sts")
    assert status == 400
    assert error_of(body)[0] == "InvalidSignatureException"


# --- errors from the backend --------------------------------------------------------------


def test_client_error_keeps_type_and_message(kms: Any) -> None:
    with pytest.raises(ClientError) as info:
        kms.describe_key(KeyId="alias/nope")
    assert info.value.response["Error"] == {
        "Code": "NotFoundException",
        "Message": "Key 'alias/nope' does not exist",
    }
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("trigger", ["BOOM", "STORE_BOOM", "BAD_RESPONSE"])
def test_internal_failures_are_generic_500s_logged_with_request_id(
    kms: Any, server: Any, trigger: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="strongroom.api"),
        pytest.raises(ClientError) as info,
    ):
        kms.encrypt(KeyId=getattr(server.backend, trigger), Plaintext=b"secret plaintext")
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"]["Code"] == "KMSInternalException"
    assert "var/lib" not in response["Error"]["Message"]
    assert "Traceback" not in response["Error"]["Message"]
    request_id = response["ResponseMetadata"]["RequestId"]
    assert any(request_id in record.getMessage() for record in caplog.records)


# --- protocol errors -----------------------------------------------------------------------


def test_unknown_target_is_unknown_operation(server: Any) -> None:
    status, headers, body = signed_post(server, b"{}", target="TrentService.MakeCoffee")
    assert status == 400
    assert error_of(body)[0] == "UnknownOperationException"
    uuid.UUID(headers["x-amzn-requestid"])


@pytest.mark.parametrize("target", [None, "Other.Encrypt", "TrentService.", "Encrypt"])
def test_missing_or_foreign_target_is_unknown_operation(server: Any, target: str | None) -> None:
    status, _, body = signed_post(server, b"{}", target=target)
    assert (status, error_of(body)[0]) == (400, "UnknownOperationException")


@pytest.mark.parametrize(
    "body",
    [
        b'{"KeyId": "k", "Plaintext": "not base64!"}',
        b'{"KeyId": "k", "Plaintext": "QUJD="}',
        b'{"KeyId": 5, "Plaintext": "QUJD"}',
        b'{"KeyId": "k", "Plaintext": "QUJD", "EncryptionContext": {"a": 1}}',
        b'{"KeyId": "k", "Plaintext": ["QUJD"]}',
        b'{"KeyId": "k"',
        b"[]",
        b'"text"',
        b'{"KeyId": NaN}',
        b"\xff\xfe{}",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_bodies_are_serialization_errors(server: Any, body: bytes) -> None:
    status, _, response = signed_post(server, body)
    assert status == 400
    assert error_of(response)[0] == "SerializationException"


def test_unknown_and_null_members_are_dropped(server: Any) -> None:
    body = b'{"KeyId": "k", "Plaintext": "QUJD", "Bogus": 1, "GrantTokens": null}'
    status, _, response = signed_post(server, body)
    assert status == 200
    assert server.backend.calls[-1][2] == {"KeyId": "k", "Plaintext": b"ABC"}
    assert json.loads(response)["CiphertextBlob"] == "ZWNoby1jdDpBQkM="


def test_oversized_body_is_refused_from_its_content_length(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: TrentService.Encrypt\r\nContent-Length: 100000000\r\n\r\n{"
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 413
        assert error_of(response.read())[0] == "RequestEntityTooLargeException"


def test_oversized_chunked_body_is_refused(server: Any) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 16384

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/",
            body=chunks(),
            headers={"Content-Type": JSON_11, "X-Amz-Target": "TrentService.Encrypt"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        assert error_of(response.read())[0] == "RequestEntityTooLargeException"
    finally:
        conn.close()


def test_unknown_path_is_404_with_request_id(server: Any) -> None:
    status, headers, body = raw_request(server.port, "GET", "/nope", None, {})
    assert status == 404
    assert "x-amzn-requestid" in headers
    assert json.loads(body)["__type"] == "UnknownOperationException"


# --- STS GetCallerIdentity ---------------------------------------------------------------------


def test_sts_get_caller_identity(server: Any, client_factory: Any) -> None:
    sts = client_factory(server.url, service="sts", region="us-east-1")
    identity = sts.get_caller_identity()
    assert identity["Account"] == server.account
    assert identity["Arn"] == f"arn:aws:iam::{server.account}:user/alice"
    assert identity["UserId"] == server.access_key_id
    uuid.UUID(identity["ResponseMetadata"]["RequestId"])


def test_sts_wrong_secret_is_signature_does_not_match(server: Any, client_factory: Any) -> None:
    sts = client_factory(server.url, service="sts", secret="wrong")
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_sts_other_action_is_invalid_action(server: Any) -> None:
    form = "application/x-www-form-urlencoded; charset=utf-8"
    status, headers, body = signed_post(
        server,
        b"Action=AssumeRole&Version=2011-06-15",
        target=None,
        content_type=form,
        service="sts",
    )
    assert status == 400
    assert headers["content-type"] == "text/xml"
    assert b"<Code>InvalidAction</Code>" in body


# --- health, readiness, metrics, access log -------------------------------------------------


def test_healthz_needs_no_authentication(server: Any) -> None:
    status, headers, body = raw_request(server.port, "GET", "/healthz", None, {})
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert "x-amzn-requestid" in headers


@pytest.mark.parametrize(("state", "expected"), [(True, 200), (False, 503), (None, 503)])
def test_readyz_follows_the_readiness_callable(
    server: Any, state: bool | None, expected: int
) -> None:
    server.ready[0] = state
    try:
        status, _, _ = raw_request(server.port, "GET", "/readyz", None, {})
    finally:
        server.ready[0] = True
    assert status == expected


def test_metrics_count_requests_errors_and_latency(kms: Any, server: Any) -> None:
    kms.generate_random(NumberOfBytes=8)
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="missing")
    status, headers, body = raw_request(server.port, "GET", "/metrics", None, {})
    text = body.decode()
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert 'strongroom_api_requests_total{operation="GenerateRandom",status="200"}' in text
    assert 'strongroom_api_errors_total{error="NotFoundException",operation="DescribeKey"}' in text
    assert 'strongroom_api_request_duration_seconds_count{operation="GenerateRandom"}' in text


def test_access_log_is_one_json_line_without_bodies(
    kms: Any, server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    marker = b"plaintext-that-must-not-be-logged"
    with caplog.at_level(logging.INFO, logger="strongroom.api.access"):
        response = kms.encrypt(KeyId="k", Plaintext=marker)
    request_id = response["ResponseMetadata"]["RequestId"]
    lines = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "strongroom.api.access" and request_id in r.getMessage()
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line["operation"] == "Encrypt"
    assert line["status"] == 200
    assert line["access_key_id"] == server.access_key_id
    assert line["latency_ms"] >= 0
    assert all(marker.decode() not in r.getMessage() for r in caplog.records)
    assert all("ZWNob" not in r.getMessage() for r in caplog.records)


# --- fuzz: nothing a client sends yields a 500 or a traceback ----------------------------------

_targets = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "TrentService.Encrypt",
            "TrentService.Decrypt",
            "TrentService.GenerateRandom",
            "TrentService.CreateKey",
            "TrentService.PutKeyPolicy",
            "TrentService.Nope",
            "TrentService.",
        ]
    ),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["QUJD", "AAAA", "=", "not base64"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "KeyId",
                    "Plaintext",
                    "CiphertextBlob",
                    "NumberOfBytes",
                    "EncryptionContext",
                    "GrantTokens",
                    "Policy",
                    "Tags",
                    "DryRun",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=12,
)
_bodies = st.one_of(
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.sampled_from([b"", b"{", b"\x00", b"[" * 3000, b"x" * 300_000]),
)
_header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
_extra_headers = st.dictionaries(
    st.sampled_from(
        [
            "X-Amz-Date",
            "X-Amz-Target",
            "Authorization",
            "X-Amz-Security-Token",
            "Date",
            "X-Amz-Content-Sha256",
            "X-Random",
        ]
    ),
    _header_text,
    max_size=2,
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=_targets,
    body=_bodies,
    content_type=st.sampled_from(
        [JSON_11, "application/json", "application/x-www-form-urlencoded", None]
    ),
    extra=_extra_headers,
    sign=st.booleans(),
)
def test_fuzz_never_500(
    fuzz_server: Any,
    target: str | None,
    body: bytes,
    content_type: str | None,
    extra: dict[str, str],
    sign: bool,
) -> None:
    status, headers, response = signed_post(
        fuzz_server,
        body,
        target=target,
        content_type=content_type,
        extra_headers=extra,
        sign=sign,
    )
    event(f"status {status}")
    assert status < 500, response
    assert b"Traceback" not in response
    assert "x-amzn-requestid" in headers


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(declared=st.integers(1, 5000), sent=st.integers(0, 4999))
def test_truncated_bodies_never_500(fuzz_server: Any, declared: int, sent: int) -> None:
    sent = min(sent, declared - 1)
    with socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=30) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: TrentService.Encrypt\r\n"
            + f"Content-Length: {declared}\r\n\r\n".encode()
            + b"{" * sent
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert not answer.startswith(b"HTTP/1.1 5")
    assert b"Traceback" not in answer


_OPERATIONS = sorted(ShapeCodec.load().operations)
_members = st.sampled_from(
    [
        "KeyId",
        "Plaintext",
        "CiphertextBlob",
        "NumberOfBytes",
        "EncryptionContext",
        "GrantTokens",
        "Policy",
        "Tags",
        "DryRun",
        "KeySpec",
        "Message",
        "Signature",
        "Recipient",
        "AttestationDocument",
        "Constraints",
        "Limit",
        "Marker",
        "x",
    ]
)
_member_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_members | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    operation=st.sampled_from(_OPERATIONS),
    request=st.dictionaries(_members, _member_values, max_size=6),
)
def test_fuzz_signed_requests_of_every_operation_never_500(
    fuzz_server: Any, operation: str, request: dict[str, Any]
) -> None:
    body = json.dumps(request).encode()
    status, headers, response = signed_post(fuzz_server, body, target=f"TrentService.{operation}")
    event(f"status {status} {json.loads(response).get('__type', '')}")
    assert status in (200, 400), response
    assert "x-amzn-requestid" in headers


def test_timestamps_go_out_as_epoch_seconds(kms: Any) -> None:
    metadata = kms.describe_key(KeyId="dated")["KeyMetadata"]
    assert metadata["CreationDate"] == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert metadata["Enabled"] is True
