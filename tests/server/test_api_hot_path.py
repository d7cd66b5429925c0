"""The shortcuts taken on the API's hot path keep its results exactly as before."""

from __future__ import annotations

import asyncio
import datetime
import re
import threading
import uuid
from collections.abc import MutableMapping
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prometheus_client import CollectorRegistry, generate_latest

from strongroom.api import SignedRequest, SigV4Verifier, create_app
from strongroom.api.metrics import ApiMetrics
from strongroom.api.request import new_request_id
from strongroom.errors import AuthError
from strongroom.kms.caller import AccessKey, Caller

KEY = AccessKey(
    "AKIAHOTPATHTEST00001",
    "hot/path/secret",
    Caller("111122223333", "arn:aws:iam::111122223333:user/a"),
)


def test_request_ids_are_random_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(2000)}
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


class _ThreadRecorder:
    """A backend that notes which thread served each operation."""

    def __init__(self) -> None:
        self.threads: dict[str, str] = {}

    def lookup_access_key(self, access_key_id: str) -> AccessKey | None:
        return KEY if access_key_id == KEY.access_key_id else None

    def call(
        self, caller: Caller, operation: str, request: dict[str, object], request_id: str
    ) -> dict[str, object]:
        self.threads[operation] = threading.current_thread().name
        return {}


def test_inline_operations_run_on_the_loop_and_the_rest_in_the_pool() -> None:
    backend = _ThreadRecorder()
    app = create_app(backend, offload=True, inline_operations=frozenset({"DescribeKey"}))
    statuses: list[int] = []

    async def call(operation: str) -> None:
        signed = _signed_now(b"{}", operation)
        headers = [(k.encode(), v.encode()) for k, v in signed.headers]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 1),
        }

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))

        await app(scope, receive, send)

    async def both() -> str:
        await call("DescribeKey")
        await call("ListKeys")
        return threading.current_thread().name

    loop_thread = asyncio.run(both())
    assert statuses == [200, 200]
    assert backend.threads["DescribeKey"] == loop_thread
    assert backend.threads["ListKeys"] != loop_thread


def _signed_now(body: bytes, operation: str) -> SignedRequest:
    request = AWSRequest(
        method="POST",
        url="https://127.0.0.1:8443/",
        data=body,
        headers={
            "X-Amz-Target": f"TrentService.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials(KEY.access_key_id, KEY.secret_access_key), "kms", "us-east-1").add_auth(
        request
    )
    return SignedRequest(
        "POST",
        "/",
        "",
        (*((k.lower(), v) for k, v in request.headers.items()), ("host", "127.0.0.1:8443")),
        body,
    )
