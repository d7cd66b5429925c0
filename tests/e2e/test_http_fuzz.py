"""Fuzzing the HTTP layer of a real server, with the real key service behind it.

Requests are signed with valid credentials, so they get past SigV4 and reach the core.
Bodies are drawn from the AWS service model (every member of every operation, typed right
or wrong, with the tenant's real key ids, ARNs, aliases, grant ids and ciphertexts mixed
in), or are random JSON, deep nesting, huge strings, invalid base64, invalid UTF-8 and
truncated JSON; targets are the 54 real operations and junk. Then raw framing: bodies
shorter than their Content-Length, huge Content-Lengths, oversized chunked bodies.

Whatever is sent: never a 5xx, never a traceback or a Python exception name in the body,
always a request id and an AWS-shaped error; requests over the size limit are refused
from their headers (413) without the server reading the body. At the end the server is
healthy and its metrics count no 5xx.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from strongroom.api import MAX_REQUEST_BYTES
from strongroom.testing.e2e_server import RunningServer
from strongroom.testing.http import (
    JSON_11,
    AwsCredentials,
    RawConnection,
    Reply,
    request_counts,
    send_raw,
    sign_headers,
)

REGION = "eu-west-1"
MODEL = json.loads(
    resources.files("strongroom").joinpath("kms", "kms-2014-11-01.json").read_text("utf-8")
)
SHAPES: dict[str, Any] = MODEL["shapes"]
OPERATIONS = sorted(MODEL["operations"])
# Key generation is the one slow thing a request can ask for: keep RSA to 2048 bits so
# hundreds of examples stay within seconds (the sizes are covered by the boto3 tests).
SLOW_ENUMS = frozenset({"RSA_3072", "RSA_4096"})
PYTHON_LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|\b(Key|Type|Value|Attribute|Index|Recursion|Unicode\w*|"
    r"Overflow|ZeroDivision|Assertion|Runtime|Lookup|OS|Memory|NotImplemented)Error\b|"
    r"binascii|sqlite3|psycopg|strongroom\.|<object|0x[0-9a-f]{6,}"
)
AWS_TYPE = re.compile(r"[A-Z][A-Za-z]{2,80}(Exception|Error|Fault)?")
# STRONGROOM_E2E_FUZZ_SCALE=20 runs twenty times the examples (a longer hunt than CI's).
SCALE = float(os.environ.get("STRONGROOM_E2E_FUZZ_SCALE", "1"))
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the server, the tenant's resources, a kept-alive connection ----------------------------


@pytest.fixture(scope="module")
def conn(server: RunningServer) -> Iterator[RawConnection]:
    with RawConnection(server.endpoint) as connection:
        yield connection


@pytest.fixture(scope="module")
def pool(kms: Any, tenant_a: AwsCredentials) -> dict[str, list[Any]]:
    """Real identifiers and blobs of the tenant, so fuzzed requests reach deep."""
    strings: list[str] = []
    blobs: list[bytes] = []
    external = ""
    for params in (
        {},
        {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
        {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
        {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
        {"Origin": "EXTERNAL"},
    ):
        meta = kms.create_key(**params)["KeyMetadata"]
        if params.get("Origin") == "EXTERNAL":
            external = meta["KeyId"]
        alias = f"alias/fuzz-{uuid.uuid4().hex[:8]}"
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        strings += [meta["KeyId"], meta["Arn"], alias, meta["Arn"].split(":key/")[0] + ":" + alias]
    symmetric = strings[0]
    grant = kms.create_grant(
        KeyId=symmetric,
        GranteePrincipal=f"arn:aws:iam::{tenant_a.account_id}:root",
        Operations=["Encrypt", "Decrypt"],
    )
    strings += [grant["GrantId"], grant["GrantToken"], f"arn:aws:iam::{tenant_a.account_id}:root"]
    blobs.append(kms.encrypt(KeyId=symmetric, Plaintext=b"fuzz")["CiphertextBlob"])
    blobs.append(
        kms.encrypt(KeyId=symmetric, Plaintext=b"ctx", EncryptionContext={"a": "b"})[
            "CiphertextBlob"
        ]
    )
    blobs.append(
        kms.get_parameters_for_import(
            KeyId=external, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )["ImportToken"]
    )
    return {"strings": strings, "blobs": blobs}


# -- strategies from the service model ------------------------------------------------------

_any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_huge_text = st.builds(
    lambda char, size: char * size,
    st.sampled_from(["a", "é", "\u4e2d", "/", "\\", '"', "\x00"]),
    st.sampled_from([257, 2048, 4097, 8193, 32769, 40_000]),
)
_odd_text = st.sampled_from(
    [
        "",
        " ",
        "alias/",
        "alias/aws/x",
        "arn:",
        "arn:aws:kms:eu-west-1:000000000000:key/",
        "arn:aws:kms:eu-west-1:123456789012:alias/x",
        "arn:aws:kms::::",
        "key/../../etc",
        "\ud800",
        "\x00\x01",
        "%00",
        "${jndi:x}",
        "'; DROP TABLE kv; --",
        "0" * 64,
    ]
)
_bad_base64 = st.sampled_from(["=", "A", "AB=", "A===", "not base64!", "QUJD\n", "QUJD====", "Ã©"])


def _strings_for(
    shape: dict[str, Any], pool: dict[str, list[Any]], dirty: bool
) -> st.SearchStrategy[Any]:
    options: list[st.SearchStrategy[Any]] = [st.sampled_from(pool["strings"])]
    options += [st.text(max_size=40), _odd_text, _huge_text] if dirty else [st.text(max_size=12)]
    enum = [v for v in shape.get("enum", []) if v not in SLOW_ENUMS]
    if enum:
        options = [st.sampled_from(enum), st.sampled_from(enum), *options]
    return st.one_of(options)


def _value(
    name: str, pool: dict[str, list[Any]], dirty: bool, depth: int = 0
) -> st.SearchStrategy[Any]:
    """Values of shape ``name``: of its type ("clean"), or any JSON and edge cases ("dirty")."""
    shape = SHAPES[name]
    kind = shape["type"]
    right: st.SearchStrategy[Any]
    if kind == "string":
        right = _strings_for(shape, pool, dirty)
    elif kind in ("integer", "long"):
        low, high = int(shape.get("min", 0)), int(shape.get("max", 2**31))
        edges = [low - 1, low, high, high + 1, 0, -1, 2**63, -(2**63) - 1] if dirty else [low, high]
        right = st.one_of(st.sampled_from(edges), st.integers(low, min(high, low + 5000)))
    elif kind == "boolean":
        right = st.booleans()
    elif kind == "blob":
        blobs = [
            st.sampled_from(pool["blobs"]).map(lambda b: base64.b64encode(b).decode()),
            st.binary(min_size=1, max_size=600).map(lambda b: base64.b64encode(b).decode()),
        ]
        if dirty:
            blobs += [
                st.sampled_from([0, 4097, 6145, 60_000]).map(
                    lambda n: base64.b64encode(b"\x01" * n).decode()
                ),
                _bad_base64,
            ]
        right = st.one_of(blobs)
    elif kind == "timestamp":
        right = st.one_of(
            st.floats(allow_nan=False, allow_infinity=False), st.integers(), st.text(max_size=30)
        )
    elif depth > 4:
        right = st.none()
    elif kind == "list":
        right = st.lists(_value(shape["member"]["shape"], pool, dirty, depth + 1), max_size=5)
    elif kind == "map":
        right = st.dictionaries(
            _strings_for(SHAPES[shape["key"]["shape"]], pool, dirty),
            _value(shape["value"]["shape"], pool, dirty, depth + 1),
            max_size=5,
        )
    else:
        right = _structure(name, pool, dirty, depth + 1)
    # Dirty values are mostly of the right type, sometimes anything at all.
    return st.one_of(right, right, right, _any_json) if dirty else right


def _structure(
    name: str, pool: dict[str, list[Any]], dirty: bool, depth: int = 0
) -> st.SearchStrategy[Any]:
    members = SHAPES[name].get("members", {})
    required = SHAPES[name].get("required", [])
    if not members:
        return st.just({})
    drawn = {m: _value(ref["shape"], pool, dirty, depth) for m, ref in members.items()}
    return st.fixed_dictionaries(
        {m: s for m, s in drawn.items() if m in required},
        optional={m: s for m, s in drawn.items() if m not in required},
    )


@pytest.fixture(scope="module")
def request_bodies(pool: dict[str, list[Any]]) -> dict[tuple[str, bool], st.SearchStrategy[Any]]:
    """For each operation, clean and dirty JSON request bodies drawn from its input shape."""
    out: dict[tuple[str, bool], st.SearchStrategy[Any]] = {}
    for operation in OPERATIONS:
        shape = MODEL["operations"][operation].get("input", {}).get("shape")
        for dirty in (False, True):
            out[operation, dirty] = _structure(shape, pool, dirty) if shape else st.just({})
    return out


# -- what every answer must look like -------------------------------------------------------


def note(value: str) -> None:
    """Record a hypothesis event when running under ``@given`` (statistics only)."""
    with contextlib.suppress(InvalidArgument):
        event(value)


def check_reply(reply: Reply) -> dict[str, Any]:
    """The invariants of any answer; returns the parsed JSON body."""
    note(f"status {reply.status}")
    assert reply.status < 500, reply.body[:500]
    text = reply.body.decode("utf-8", "replace")
    assert not PYTHON_LEAKS.search(text), text[:500]
    assert "x-amzn-requestid" in reply.headers
    body: dict[str, Any] = json.loads(reply.body) if reply.body else {}
    if reply.status >= 400:
        assert AWS_TYPE.fullmatch(body["__type"]), body
        assert isinstance(body["message"], str)
        note(body["__type"])
    return body


def post(
    conn: RawConnection,
    server: RunningServer,
    credentials: AwsCredentials,
    body: bytes,
    target: str | None,
    content_type: str | None = JSON_11,
    extra: dict[str, str] | None = None,
) -> Reply:
    headers = sign_headers(
        server.endpoint,
        credentials,
        REGION,
        body,
        target=target,
        content_type=content_type,
        extra=extra,
    )
    return conn.post(body, headers)


# -- fuzzing through the model --------------------------------------------------------------


@settings(SETTINGS, max_examples=int(700 * SCALE))
@given(data=st.data())
def test_model_driven_requests_never_fail_the_server(
    data: st.DataObject,
    server: RunningServer,
    tenant_a: AwsCredentials,
    conn: RawConnection,
    request_bodies: dict[tuple[str, bool], st.SearchStrategy[Any]],
) -> None:
    operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    source = data.draw(st.sampled_from([operation, operation, operation, *OPERATIONS[:3]]))
    dirty = data.draw(st.booleans(), label="dirty")
    body = data.draw(request_bodies[source, dirty], label="body")
    if data.draw(st.booleans(), label="dry run") and isinstance(body, dict):
        body["DryRun"] = True
    raw = json.dumps(body).encode("utf-8")
    if len(raw) > MAX_REQUEST_BYTES:
        raw = raw[:MAX_REQUEST_BYTES]  # truncated JSON: a serialisation error, not a 413
    reply = post(conn, server, tenant_a, raw, f"TrentService.{operation}")
    parsed = check_reply(reply)
    if reply.status == 200:
        note(f"ok {operation}")
        assert isinstance(parsed, dict)


_targets = st.one_of(
    st.sampled_from([f"TrentService.{op}" for op in OPERATIONS]),
    st.sampled_from(
        [
            None,
            "",
            "TrentService.",
            "TrentService.Nope",
            "trentservice.Encrypt",
            "TrentService.encrypt",
            "TrentService.Encrypt.Extra",
            "AWSSecurityTokenServiceV20110615.GetCallerIdentity",
            "Kinesis_20131202.PutRecord",
            "TrentService.__init__",
            "TrentService.op_encrypt",
        ]
    ),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60),
)
_bodies = st.one_of(
    _any_json.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=400),
    st.sampled_from(
        [
            b"",
            b"{",
            b"}",
            b"null",
            b"[]",
            b'"x"',
            b"1e999999",
            b"NaN",
            b'{"KeyId": NaN}',
            b'{"KeyId": Infinity}',
            b"\xff\xfe{}",
            b'{"KeyId": "\xff"}',
            b'{"KeyId": "\\ud800"}',
            b'{"a":1,"a":2}',
            b"[" * 100_000,
            b'{"KeyId":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            b'{"Plaintext": "' + b"A" * 200_000 + b'"}',
            b'{"NumberOfBytes": 1' + b"0" * 5000 + b"}",
            b'{"NumberOfBytes": 1.0e400}',
            b'{"Plaintext": "QUJD", "KeyId": "alias/x"}' + b" " * 1000,
        ]
    ),
)


@settings(SETTINGS, max_examples=int(350 * SCALE))
@given(
    target=_targets,
    body=_bodies,
    content_type=st.sampled_from(
        [
            JSON_11,
            "application/x-amz-json-1.0",
            "application/json",
            "text/plain",
            None,
            "application/x-amz-json-1.1; charset=utf-8",
        ]
    ),
)
def test_junk_targets_and_bodies_never_fail_the_server(
    server: RunningServer,
    tenant_a: AwsCredentials,
    conn: RawConnection,
    target: str | None,
    body: bytes,
    content_type: str | None,
) -> None:
    reply = post(conn, server, tenant_a, body, target, content_type)
    check_reply(reply)


@settings(SETTINGS, max_examples=int(60 * SCALE))
@given(
    operation=st.sampled_from(OPERATIONS),
    member=st.sampled_from(["KeyId", "Plaintext", "CiphertextBlob", "Message", "Policy", "Tags"]),
    depth=st.integers(1, 200_000 // 2 - 10),
)
def test_deep_nesting_in_a_member(
    server: RunningServer,
    tenant_a: AwsCredentials,
    conn: RawConnection,
    operation: str,
    member: str,
    depth: int,
) -> None:
    body = (f'{{"{member}":' + "[" * depth + "]" * depth + "}").encode()
    reply = post(conn, server, tenant_a, body, f"TrentService.{operation}")
    check_reply(reply)
    shape = MODEL["operations"][operation].get("input", {}).get("shape")
    if member in SHAPES.get(shape, {}).get("members", {}):
        assert reply.status == 400
    else:
        assert reply.status in (200, 400)  # members an operation does not have are dropped


# -- sizes and framing ----------------------------------------------------------------------


def _raw_request(
    server: RunningServer,
    credentials: AwsCredentials,
    body: bytes,
    declared: int | None = None,
    chunked: bool = False,
) -> bytes:
    headers = sign_headers(
        server.endpoint, credentials, REGION, body, target="TrentService.Encrypt"
    )
    headers.pop("Content-Length", None)
    head = "POST / HTTP/1.1\r\n" + f"Host: {server.endpoint.host}:{server.endpoint.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        return (
            head.encode()
            + b"".join(
                f"{len(body[i : i + 65536]):x}\r\n".encode() + body[i : i + 65536] + b"\r\n"
                for i in range(0, len(body), 65536)
            )
            + b"0\r\n\r\n"
        )
    size = len(body) if declared is None else declared
    return head.encode() + f"Content-Length: {size}\r\n\r\n".encode() + body


def _status(answer: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    return int(match.group(1)) if match else None


def _body(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


def test_huge_content_length_is_refused_from_the_headers(
    server: RunningServer, tenant_a: AwsCredentials
) -> None:
    # Only the headers are sent and the client waits: the answer cannot wait for the body.
    for declared in (MAX_REQUEST_BYTES + 1, 10**9, 10**30):
        request = _raw_request(server, tenant_a, b"", declared=declared)
        answer = send_raw(server.endpoint, request, half_close=False)
        status = _status(answer)
        assert status == 413 or (status is not None and 400 <= status < 500), answer[:300]
        assert not PYTHON_LEAKS.search(answer.decode("latin-1"))
        if status == 413:
            assert json.loads(_body(answer))["__type"] == "RequestEntityTooLargeException"


def test_oversized_bodies_are_refused(
    server: RunningServer, tenant_a: AwsCredentials, conn: RawConnection
) -> None:
    body = b'{"KeyId": "alias/x", "Plaintext": "' + b"A" * MAX_REQUEST_BYTES + b'"}'
    answer = send_raw(
        server.endpoint, _raw_request(server, tenant_a, body, chunked=True), half_close=False
    )
    assert _status(answer) == 413, answer[:300]
    assert json.loads(_body(answer))["__type"] == "RequestEntityTooLargeException"
    answer = send_raw(server.endpoint, _raw_request(server, tenant_a, body), half_close=False)
    assert _status(answer) == 413, answer[:300]
    at_limit = b'{"Plaintext": "' + b"A" * (MAX_REQUEST_BYTES - 40) + b'"}'
    reply = post(conn, server, tenant_a, at_limit, "TrentService.Encrypt")
    assert reply.status == 400  # read in full and judged: too long a plaintext, not too large
    check_reply(reply)


@settings(SETTINGS, max_examples=int(25 * SCALE))
@given(declared=st.integers(2, 4000), cut=st.floats(0, 0.99))
def test_truncated_bodies_get_no_5xx(
    server: RunningServer, tenant_a: AwsCredentials, declared: int, cut: float
) -> None:
    body = json.dumps({"KeyId": "alias/x", "Plaintext": "QUJD" * 1000}).encode()[:declared]
    sent = body[: int(len(body) * cut)]
    answer = send_raw(server.endpoint, _raw_request(server, tenant_a, sent, declared=declared))
    status = _status(answer)
    event(f"status {status}")
    assert status is None or status < 500, answer[:300]
    assert not PYTHON_LEAKS.search(answer.decode("latin-1"))


def test_the_server_is_healthy_afterwards_and_counted_no_5xx(
    whole_module: None,
    server: RunningServer,
    tenant_a: AwsCredentials,
    kms: Any,
    conn: RawConnection,
) -> None:
    assert conn.request("GET", "/healthz", None, {}).status == 200
    assert kms.generate_random(NumberOfBytes=8)["Plaintext"]
    served = request_counts(server.endpoint)
    assert sum(served.values()) > 1000, "the metrics miss the fuzzed requests"
    assert [key for key in served if key[1].startswith("5")] == []
