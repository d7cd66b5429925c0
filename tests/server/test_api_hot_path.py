"""The shortcuts taken on the API's hot path keep its results exactly as before."""

from __future__ import annotations

import datetime
import re
import uuid
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prometheus_client import CollectorRegistry, generate_latest

from strongroom.api import SignedRequest, SigV4Verifier
from strongroom.api.app import _new_id
from strongroom.api.metrics import ApiMetrics
from strongroom.errors import AuthError
from strongroom.kms.caller import AccessKey, Caller

KEY = AccessKey(
    "AKIAHOTPATHTEST00001",
    "hot/path/secret",
    Caller("111122223333", "arn:aws:iam::111122223333:user/a"),
)


def test_request_ids_are_random_version_4_uuids() -> None:
    ids = {_new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", text
        )


def _signed(body: bytes, when: str, secret: str = KEY.secret_access_key) -> SignedRequest:
    """Sign as botocore does, at the time ``when`` (YYYYMMDDTHHMMSSZ)."""
    moment = datetime.datetime.strptime(when, "%Y%m%dT%H%M%SZ")
    request = AWSRequest(
        method="POST",
        url="https://127.0.0.1:8443/",
        data=body,
        headers={"X-Amz-Target": "TrentService.Decrypt"},
    )
    auth = SigV4Auth(Credentials(KEY.access_key_id, secret), "kms", "us-east-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        auth.add_auth(request)
    headers = tuple((k.lower(), v) for k, v in request.headers.items())
    return SignedRequest("POST", "/", "", (*headers, ("host", "127.0.0.1:8443")), body)


def test_remembered_timestamp_never_lends_a_signature_to_another_request() -> None:
    when, next_second = "20270115T080000Z", "20270115T080001Z"
    signed_at = datetime.datetime(2027, 1, 15, 8, 0, 0, tzinfo=datetime.UTC).timestamp()
    verifier = SigV4Verifier(lambda _: KEY, lambda: signed_at)
    first = _signed(b'{"a":1}', when)
    second = _signed(b'{"a":2}', when)
    later = _signed(b'{"a":3}', next_second)
    for request in (first, second, later, first):
        assert verifier.verify(request).access_key_id == KEY.access_key_id
    forged = SignedRequest(first.method, first.path, first.query, first.headers, b'{"a":9}')
    with pytest.raises(AuthError):
        verifier.verify(forged)
    with pytest.raises(AuthError):
        verifier.verify(_signed(b'{"a":1}', when, secret="not-the-secret"))
    # A remembered date is still checked against the clock on every request.
    late = SigV4Verifier(lambda _: KEY, lambda: signed_at + 16 * 60)
    with pytest.raises(AuthError, match="expired"):
        late.verify(first)
    with pytest.raises(AuthError, match="expired"):
        late.verify(first)


def test_memoised_metric_children_count_every_request() -> None:
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)
    for _ in range(3):
        metrics.observe("Decrypt", 200, None, 0.001)
    for _ in range(2):
        metrics.observe("Decrypt", 400, "InvalidCiphertextException", 0.002)
    text = generate_latest(registry).decode()
    assert 'strongroom_api_requests_total{operation="Decrypt",status="200"} 3.0' in text
    assert 'strongroom_api_requests_total{operation="Decrypt",status="400"} 2.0' in text
    assert (
        'strongroom_api_errors_total{error="InvalidCiphertextException",operation="Decrypt"} 2.0'
        in text
    )
    assert 'strongroom_api_request_duration_seconds_count{operation="Decrypt"} 5.0' in text
