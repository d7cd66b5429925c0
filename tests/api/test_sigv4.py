"""SigV4 verification against signatures made by real botocore, and every way to break one."""

from __future__ import annotations

import calendar
import hashlib
import time
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strongroom.api.sigv4 import (
    SignedRequest,
    SigV4Verifier,
    canonical_query,
    canonical_uri,
)
from strongroom.errors import AuthError
from strongroom.kms.caller import AccessKey, Caller

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CALLER = Caller(tenant="111122223333", principal_arn="arn:aws:iam::111122223333:user/alice")
ACCESS_KEY = AccessKey(KEY_ID, SECRET, CALLER)
HOST = "kms.example.test:8443"
FIXED = calendar.timegm((2015, 8, 30, 12, 36, 0))
MISMATCH = "The request signature we calculated does not match the signature you provided."


def lookup(access_key_id: str) -> AccessKey | None:
    return ACCESS_KEY if access_key_id == KEY_ID else None


def verifier(clock: Any = time.time, services: Any = ("kms", "sts")) -> SigV4Verifier:
    return SigV4Verifier(lookup, clock, services=services)


def botocore_sign(
    body: bytes = b"{}",
    region: str = "eu-west-1",
    service: str = "kms",
    path: str = "/",
    query: str = "",
    headers: dict[str, str] | None = None,
    secret: str = SECRET,
    method: str = "POST",
    target: str | None = "TrentService.Encrypt",
) -> SignedRequest:
    """Sign with botocore's SigV4Auth at the current time; return what a server receives."""
    url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
    sent = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        sent["X-Amz-Target"] = target
    sent.update(headers or {})
    request = AWSRequest(method=method, url=url, data=body, headers=sent)
    SigV4Auth(Credentials(KEY_ID, secret), service, region).add_auth(request)
    return SignedRequest(
        method=method,
        path=path,
        query=query,
        headers=(("Host", HOST), *request.headers.items()),
        body=body,
    )


def botocore_sign_at(timestamp: str, date_header: str | None = None) -> SignedRequest:
    """Sign with botocore's own canonicalisation at a fixed time (no clock to patch)."""
    headers = {"Host": "example.amazonaws.com"}
    if date_header is None:
        headers["X-Amz-Date"] = timestamp
    else:
        headers["Date"] = date_header
    request = AWSRequest(method="GET", url="https://example.amazonaws.com/", headers=headers)
    request.context["timestamp"] = timestamp
    auth = SigV4Auth(Credentials(KEY_ID, SECRET), "service", "us-east-1")
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    signed = ";".join(sorted(h.lower() for h in headers))
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{timestamp[:8]}/us-east-1/service/aws4_request, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return SignedRequest(
        method="GET",
        path="/",
        query="",
        headers=(*headers.items(), ("Authorization", authorization)),
        body=b"",
    )


def with_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    """Replace (or with ``None`` drop) every header called ``name``."""
    kept = tuple((n, v) for n, v in request.headers if n.lower() != name.lower())
    headers = kept if value is None else (*kept, (name, value))
    return SignedRequest(request.method, request.path, request.query, headers, request.body)


def header(request: SignedRequest, name: str) -> str:
    return next(v for n, v in request.headers if n.lower() == name.lower())


def auth_error(request: SignedRequest, clock: Any = time.time) -> AuthError:
    with pytest.raises(AuthError) as info:
        verifier(clock).verify(request)
    return info.value


# --- the AWS test suite vector and botocore at a fixed time -------------------------------


def test_aws_suite_get_vanilla_vector() -> None:
    request = botocore_sign_at("20150830T123600Z")
    assert header(request, "Authorization").endswith(
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    verified = verifier(lambda: FIXED, services=["service"]).verify(request)
    assert (verified.access_key_id, verified.region, verified.service) == (
        KEY_ID,
        "us-east-1",
        "service",
    )
    assert verified.access_key is ACCESS_KEY


def test_date_header_is_used_without_x_amz_date() -> None:
    request = botocore_sign_at("20150830T123600Z", date_header="Sun, 30 Aug 2015 12:36:00 GMT")
    assert verifier(lambda: FIXED + 60, services=["service"]).verify(request).region == (
        "us-east-1"
    )


# --- real botocore signatures verify ------------------------------------------------------

_regions = st.from_regex(r"[a-z]{2}(-[a-z]{2,9}){1,2}-[1-9]", fullmatch=True)
_segments = st.text(st.characters(codec="utf-8", exclude_characters="/?#%"), min_size=1, max_size=8)
_paths = st.lists(_segments, max_size=3).map(
    lambda parts: "/" + "/".join(quote(p, safe="~") for p in parts)
)
_query_pairs = st.lists(st.tuples(st.text(min_size=1, max_size=6), st.text(max_size=6)), max_size=4)
_header_values = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20).map(
    lambda v: f"  {v}   with  spaces "
)


def encode_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=2048),
    region=_regions,
    service=st.sampled_from(["kms", "sts"]),
    path=_paths,
    pairs=_query_pairs,
    extra=_header_values,
)
def test_botocore_signatures_verify(
    body: bytes, region: str, service: str, path: str, pairs: list[tuple[str, str]], extra: str
) -> None:
    request = botocore_sign(
        body, region, service, path, encode_query(pairs), headers={"X-Custom-Thing": extra}
    )
    verified = verifier().verify(request)
    assert (verified.access_key_id, verified.region, verified.service) == (
        KEY_ID,
        region,
        service,
    )


def test_content_sha256_header_verifies_when_it_matches_the_body() -> None:
    body = b'{"KeyId": "k"}'
    request = botocore_sign(
        body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    )
    assert verifier().verify(request).service == "kms"


# --- any mutation of what was signed fails ----------------------------------------------------

_MUTATIONS = ["header", "target", "body", "path", "query", "date", "method", "signature", "host"]


def _flip(text: str, index: int) -> str:
    index %= max(len(text), 1)
    if not text:
        return "x"
    replacement = "b" if text[index] != "b" else "c"
    return text[:index] + replacement + text[index + 1 :]


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(min_size=1, max_size=512),
    mutation=st.sampled_from(_MUTATIONS),
    index=st.integers(0, 10_000),
    shift=st.integers(1, 600).flatmap(lambda n: st.sampled_from([n, -n])),
)
def test_any_mutation_fails(body: bytes, mutation: str, index: int, shift: int) -> None:
    request = botocore_sign(body, path="/a/b", query="x=1&y=2", headers={"X-Custom": "value"})
    verifier().verify(request)
    method, path, query, body_out = request.method, request.path, request.query, request.body
    headers = request.headers
    if mutation == "header":
        request = with_header(request, "X-Custom", _flip("value", index))
    elif mutation == "target":
        request = with_header(request, "X-Amz-Target", "TrentService.Decrypt")
    elif mutation == "host":
        request = with_header(request, "Host", "other.example.test:8443")
    elif mutation == "body":
        mutated = bytearray(body)
        mutated[index % len(body)] ^= 1 << (index % 8)
        request = SignedRequest(method, path, query, headers, bytes(mutated))
    elif mutation == "path":
        request = SignedRequest(method, "/a/" + _flip("b", index), query, headers, body_out)
    elif mutation == "query":
        request = SignedRequest(method, path, _flip(query, index), headers, body_out)
    elif mutation == "method":
        request = SignedRequest("PUT", path, query, headers, body_out)
    elif mutation == "date":
        sent = calendar.timegm(time.strptime(header(request, "X-Amz-Date"), "%Y%m%dT%H%M%SZ"))
        moved = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(sent + shift))
        request = with_header(request, "X-Amz-Date", moved)
    else:
        authorization = header(request, "Authorization")
        cut = len(authorization) - 64 + index % 64
        mutated_auth = authorization[:cut] + ("0" if authorization[cut] != "0" else "1")
        request = with_header(request, "Authorization", mutated_auth + authorization[cut + 1 :])
    assume(not (mutation == "query" and canonical_query(request.query) == "x=1&y=2"))
    error = auth_error(request)
    assert error.aws_type == "InvalidSignatureException"


def test_wrong_secret_fails() -> None:
    error = auth_error(botocore_sign(secret="not-the-secret"))
    assert error.aws_type == "InvalidSignatureException"
    assert str(error).startswith(MISMATCH)
    assert str(error).endswith("Consult the service documentation for details.")


def test_body_not_matching_declared_content_sha256_fails() -> None:
    declared = hashlib.sha256(b"original").hexdigest()
    request = botocore_sign(b"original", headers={"X-Amz-Content-SHA256": declared})
    tampered = SignedRequest(request.method, request.path, request.query, request.headers, b"x")
    assert auth_error(tampered).aws_type == "InvalidSignatureException"


def test_unsigned_payload_is_refused() -> None:
    request = botocore_sign(b"{}", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert auth_error(request).aws_type == "InvalidSignatureException"


# --- each failure has AWS's error type ----------------------------------------------------------


def test_missing_authorization() -> None:
    error = auth_error(with_header(botocore_sign(), "Authorization", None))
    assert (error.aws_type, str(error)) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
    assert error.http_status == 400


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/kms/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE//us-east-1/kms/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request, "
        "SignedHeaders=ho st, Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization_is_incomplete(authorization: str) -> None:
    request = with_header(botocore_sign(), "Authorization", authorization)
    assert auth_error(request).aws_type == "IncompleteSignatureException"


def test_missing_date_is_incomplete() -> None:
    error = auth_error(with_header(botocore_sign(), "X-Amz-Date", None))
    assert error.aws_type == "IncompleteSignatureException"
    assert "'X-Amz-Date' or a 'Date' header" in str(error)


def test_unknown_access_key_is_unrecognized() -> None:
    request = botocore_sign()
    authorization = header(request, "Authorization").replace(KEY_ID, "AKIDUNKNOWN")
    error = auth_error(with_header(request, "Authorization", authorization))
    assert (error.aws_type, str(error)) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_security_token_is_unrecognized() -> None:
    request = with_header(botocore_sign(), "X-Amz-Security-Token", "FwoGZXIvYXdz")
    assert auth_error(request).aws_type == "UnrecognizedClientException"


@pytest.mark.parametrize(
    ("offset", "start"),
    [(901, "Signature expired: "), (-901, "Signature not yet current: ")],
)
def test_clock_skew_beyond_fifteen_minutes(offset: int, start: str) -> None:
    request = botocore_sign_at("20150830T123600Z")
    with pytest.raises(AuthError) as info:
        verifier(lambda: FIXED + offset, services=["service"]).verify(request)
    assert info.value.aws_type == "InvalidSignatureException"
    message = str(info.value)
    assert message.startswith(start + "20150830T123600Z is ")
    if offset > 0:
        assert message == (
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z "
            "(20150830T125101Z - 15 min.)"
        )


@pytest.mark.parametrize("offset", [900, -900, 0])
def test_clock_skew_up_to_fifteen_minutes_is_accepted(offset: int) -> None:
    request = botocore_sign_at("20150830T123600Z")
    assert verifier(lambda: FIXED + offset, services=["service"]).verify(request)


def test_credential_date_must_match_request_date() -> None:
    request = botocore_sign()
    authorization = header(request, "Authorization")
    day = header(request, "X-Amz-Date")[:8]
    other = "20000101"
    error = auth_error(with_header(request, "Authorization", authorization.replace(day, other)))
    assert error.aws_type == "InvalidSignatureException"
    assert "Date in Credential scope does not match" in str(error)


def test_service_outside_the_accepted_ones_fails() -> None:
    error = auth_error(botocore_sign(service="s3"))
    assert error.aws_type == "InvalidSignatureException"
    assert "correct service" in str(error)


def test_host_must_be_signed() -> None:
    request = botocore_sign()
    authorization = header(request, "Authorization").replace("host;", "")
    error = auth_error(with_header(request, "Authorization", authorization))
    assert error.aws_type == "InvalidSignatureException"


def test_target_must_be_signed_when_sent() -> None:
    request = botocore_sign(target=None)
    assert verifier().verify(request).service == "kms"
    error = auth_error(with_header(request, "X-Amz-Target", "TrentService.Decrypt"))
    assert error.aws_type == "InvalidSignatureException"
    assert "must be a signed header" in str(error)


# --- canonical forms agree with botocore's ---------------------------------------------------


@given(
    raw=st.lists(
        st.sampled_from(["a", "b%20c", ".", "..", "", "~x", "%2F", "d:e"]), max_size=6
    ).map("/".join)
)
def test_canonical_uri_matches_botocore(raw: str) -> None:
    path = "/" + raw
    auth = SigV4Auth(Credentials(KEY_ID, SECRET), "kms", "us-east-1")
    assert canonical_uri(path) == auth._normalize_url_path(path)


@given(pairs=_query_pairs)
def test_canonical_query_matches_botocore(pairs: list[tuple[str, str]]) -> None:
    query = encode_query(pairs)
    auth = SigV4Auth(Credentials(KEY_ID, SECRET), "kms", "us-east-1")
    expected = auth._canonical_query_string_url(urlsplit(f"https://h/?{query}"))
    assert canonical_query(query) == expected


@settings(max_examples=200, deadline=None)
@given(
    signature=st.one_of(
        st.text("0123456789abcdefABCDEFgxyz", min_size=64, max_size=64),
        st.text(min_size=60, max_size=68),
        st.just("é" * 64),
    )
)
def test_a_remembered_authorization_head_answers_as_a_full_parse(signature: str) -> None:
    request = botocore_sign()
    warm = verifier()
    warm.verify(request)  # remembers the header up to its signature
    authorization = header(request, "Authorization")
    head = authorization.rpartition("Signature=")[0]
    changed = with_header(request, "Authorization", head + "Signature=" + signature)
    outcomes = []
    for used in (warm, verifier()):
        try:
            used.verify(changed)
            outcomes.append(("ok", ""))
        except AuthError as exc:
            outcomes.append((exc.aws_type, str(exc)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] != "ok"
