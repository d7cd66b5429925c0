"""``StrongroomUserKeys.<Op>`` routing in the app, over a backend that has no user keys.

The echo backend of conftest implements only ``KmsBackend`` (no ``call_user_keys``): the
user-key targets are then unknown operations, labelled ``unknown`` in the metrics.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.api import UserKeyBackend
from strongroom.api.shapes import USER_KEYS_MODEL_PATH, ShapeCodec
from strongroom.kms.userkeys.api import USER_KEYS_MODEL_FILE, USER_KEYS_TARGET_PREFIX


def post(server: Any, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = AWSRequest(
        method="POST",
        url=server.url + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    creds = Credentials(server.access_key_id, server.secret)
    SigV4Auth(creds, "kms", server.region).add_auth(request)
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=dict(request.headers.items()))
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_a_backend_without_user_keys_does_not_offer_them(server: Any) -> None:
    assert not isinstance(server.backend, UserKeyBackend)
    before = len(server.backend.calls)
    status, body = post(server, "StrongroomUserKeys.CountUserKeys", b'{"KeyId": "k"}')
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert len(server.backend.calls) == before  # nothing reached the backend


def test_the_app_and_the_service_read_the_same_model() -> None:
    codec = ShapeCodec.load(USER_KEYS_MODEL_PATH)
    assert USER_KEYS_MODEL_PATH[-1] == USER_KEYS_MODEL_FILE
    assert codec.target_prefix == USER_KEYS_TARGET_PREFIX
    assert codec.operations == {
        "GenerateUserDataKey",
        "EncryptForUser",
        "CreateUserKeys",
        "DestroyUserKey",
        "DescribeUserKey",
        "UserKeyExists",
        "CountUserKeys",
    }
    assert not codec.operations & ShapeCodec.load().operations
