"""AWS Signature Version 4: checking that a request was signed with a known access key.

Pure: the caller hands in the request's parts, a function that looks access keys up and a
clock; nothing here reads a socket, a file or the system time. The canonical request is
built as AWS builds it::

    METHOD
    CanonicalURI
    CanonicalQueryString
    CanonicalHeaders (one line per header, then an empty line)
    SignedHeaders
    HashedPayload

- CanonicalURI: the path as sent, dot segments and repeated slashes removed, then
  URI-encoded once more (every service but S3 encodes twice; the wire form is the first).
- CanonicalQueryString: each name and value decoded and re-encoded with only
  ``A-Za-z0-9-_.~`` left bare, sorted by name then value.
- CanonicalHeaders: the signed headers, lowercase and sorted, each ``name:value`` with
  values trimmed, inner runs of whitespace made one space, repeats joined with ``,``.
- HashedPayload: ``x-amz-content-sha256`` if sent (and then it must be the body's SHA-256),
  else the hex SHA-256 of the body.

The signing key is ``HMAC("AWS4" + secret, date) -> region -> service -> "aws4_request"``
and the signatures are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import quote, unquote_to_bytes

from strongroom.errors import AuthError
from strongroom.kms.caller import AccessKey

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_CLOCK_SKEW_SECONDS = 15 * 60
DEFAULT_SERVICES = frozenset({"kms", "sts"})
SIGNING_KEY_CACHE_SIZE = 4096

MISSING_TOKEN = "MissingAuthenticationTokenException"  # noqa: S105 (an error type)
INCOMPLETE = "IncompleteSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"
INVALID = "InvalidSignatureException"

MSG_MISSING = "Missing Authentication Token"
MSG_UNRECOGNIZED = "The security token included in the request is invalid."
MSG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = r"[!#$%&'*+.^_`|~0-9a-z-]+"
_HEADER_NAMES = re.compile(f"{_HEADER_NAME}(?:;{_HEADER_NAME})*")
# The header that names the operation: signed whenever sent, so it cannot be swapped.
_MUST_SIGN_IF_SENT = ("x-amz-target",)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The parts of an HTTP request that SigV4 covers, as received.

    ``path`` is the raw (still percent-encoded) path, ``query`` the raw query string
    without ``?``; ``headers`` are ``(name, value)`` pairs in the order received, names
    in any case.
    """

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class SignedParts(Protocol):
    """What :meth:`SigV4Verifier.verify` reads of a request (:class:`SignedRequest` has it)."""

    @property
    def method(self) -> str:
        """The HTTP method."""
        ...

    @property
    def path(self) -> str:
        """The raw path."""
        ...

    @property
    def query(self) -> str:
        """The raw query string, without ``?``."""
        ...

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """``(name, value)`` pairs as received."""
        ...

    @property
    def body(self) -> bytes:
        """The body."""
        ...


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose signature checked out: who signed it, for which region and service."""

    access_key: AccessKey
    region: str
    service: str

    @property
    def access_key_id(self) -> str:
        """The id of the access key that signed the request."""
        return self.access_key.access_key_id


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str
    scope: str
    """``date/region/service/aws4_request``, as the string to sign names it."""
    signed_list: str
    """The signed header names joined by ``;``, as the canonical request lists them."""


def _parse_authorization(value: str) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError(INCOMPLETE, f"Unsupported AWS 'algorithm': use '{ALGORITHM}'.")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, item = part.strip().partition("=")
        if sep:
            params[name] = item.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in params]
    if missing:
        raise AuthError(
            INCOMPLETE,
            " ".join(f"Authorization header requires '{n}' parameter." for n in missing),
        )
    scope = params["Credential"].split("/")
    if len(scope) != 5 or not all(scope):
        raise AuthError(
            INCOMPLETE,
            "Credential must have the form <key id>/<date>/<region>/<service>/aws4_request.",
        )
    signed = params["SignedHeaders"].lower()
    if not _HEADER_NAMES.fullmatch(signed):
        raise AuthError(INCOMPLETE, "SignedHeaders must list header names separated by ';'.")
    names = tuple(sorted(set(signed.split(";"))))
    return _Authorization(
        access_key_id=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        terminator=scope[4],
        signed_headers=names,
        signature=params["Signature"],
        scope="/".join(scope[1:4]) + "/" + TERMINATOR,
        signed_list=";".join(names),
    )


def canonical_uri(raw_path: str) -> str:
    """Return the canonical URI of a raw request path (see the module docstring)."""
    if not raw_path or raw_path == "/":
        return "/"
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if segments:
                segments.pop()
        else:
            segments.append(segment)
    path = "/" + "/".join(segments) if raw_path.startswith("/") else "/".join(segments)
    if raw_path.endswith("/") and segments:
        path += "/"
    return quote(path, safe="/~")


def canonical_query(raw_query: str) -> str:
    """Return the canonical query string of a raw query string."""
    if not raw_query:
        return ""
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append(
            (
                quote(unquote_to_bytes(name), safe="-_.~"),
                quote(unquote_to_bytes(value), safe="-_.~"),
            )
        )
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def _trim(value: str) -> str:
    return " ".join(value.split())


def _timestamp(headers: dict[str, list[str]]) -> tuple[str, float]:
    """Return the request time as ``YYYYMMDDTHHMMSSZ`` and as seconds since the epoch."""
    amz = headers.get("x-amz-date")
    if amz:
        text = amz[0].strip()
        if not _AMZ_DATE.fullmatch(text):
            raise AuthError(INCOMPLETE, "X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z'.")
        try:
            moment = datetime(
                int(text[0:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[9:11]),
                int(text[11:13]),
                int(text[13:15]),
                tzinfo=UTC,
            )
        except ValueError:
            raise AuthError(INCOMPLETE, "X-Amz-Date is not a valid date.") from None
        return text, moment.timestamp()
    date = headers.get("date")
    if date:
        try:
            moment = parsedate_to_datetime(date[0])
        except (TypeError, ValueError, IndexError, OverflowError):
            raise AuthError(INCOMPLETE, "Date header is not a valid HTTP date.") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y%m%dT%H%M%SZ"), moment.timestamp()
    raise AuthError(
        INCOMPLETE,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive the SigV4 signing key for one day, region and service."""
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    key = hmac.digest(key, region.encode("utf-8"), "sha256")
    key = hmac.digest(key, service.encode("utf-8"), "sha256")
    return hmac.digest(key, TERMINATOR.encode("utf-8"), "sha256")


class SigV4Verifier:
    """Checks SigV4 ``Authorization`` headers against the access keys ``lookup`` knows.

    ``clock`` returns the current time in seconds since the epoch; ``services`` are the
    signing names accepted in the credential scope.
    """

    def __init__(
        self,
        lookup: Callable[[str], AccessKey | None],
        clock: Callable[[], float],
        services: Iterable[str] = DEFAULT_SERVICES,
        max_skew_seconds: int = MAX_CLOCK_SKEW_SECONDS,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self._services = frozenset(services)
        self._max_skew = max_skew_seconds
        # Signing keys change once a day per key, region and service: derive each once.
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._last_date: tuple[str, tuple[str, float]] = ("", ("", 0.0))
        # Authorization headers up to their signature, parsed and scope-checked
        self._heads: dict[str, _Authorization] = {}

    def verify(self, request: SignedParts) -> Verified:
        """Return who signed ``request``, or raise :class:`~strongroom.errors.AuthError`.

        ``request`` is a :class:`SignedRequest` or anything with the same attributes
        (the API hands in its own request object rather than copying it into one).
        """
        headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            name = name.lower()
            found = headers.get(name)
            if found is None:
                headers[name] = [value]
            else:
                found.append(value)
        authorization = headers.get("authorization")
        if not authorization:
            raise AuthError(MISSING_TOKEN, MSG_MISSING)
        if len(authorization) > 1:
            raise AuthError(INCOMPLETE, "Only one Authorization header may be sent.")
        auth, signature = self._authorization(authorization[0], headers)
        amz_date, sent = self._timestamp(headers)
        if auth.date != amz_date[:8]:
            self._check_scope(auth, amz_date)  # raises, naming both dates
        for name in _MUST_SIGN_IF_SENT:
            if name in headers and name not in auth.signed_headers:
                raise AuthError(INVALID, f"'{name}' must be a signed header.")
        self._check_clock(amz_date, sent)
        access_key = self._lookup(auth.access_key_id)
        if access_key is None:
            raise AuthError(UNRECOGNIZED, MSG_UNRECOGNIZED)
        payload_hash = _payload_hash(headers, request.body)
        canonical = _canonical_request(request, headers, auth, payload_hash)
        string_to_sign = (
            f"{ALGORITHM}\n{amz_date}\n{auth.scope}\n"
            + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        )
        key = self._signing_key(access_key, auth)
        expected = hmac.digest(key, string_to_sign.encode("utf-8"), "sha256").hex()
        provided = signature if _SIGNATURE.fullmatch(signature) else ""
        if not hmac.compare_digest(expected.encode("ascii"), provided.encode("ascii")):
            raise AuthError(INVALID, MSG_MISMATCH)
        return Verified(access_key=access_key, region=auth.region, service=auth.service)

    def _authorization(
        self, value: str, headers: dict[str, list[str]]
    ) -> tuple[_Authorization, str]:
        """The parsed Authorization header and its signature, checked but for the date.

        A client sends the same header but for the signature all day long: the part
        before the final ``Signature=`` is parsed and checked once and remembered (only
        when the full parse finds exactly that signature, so a remembered head parses
        the same with any other 64 hex digits after it).
        """
        head, mark, signature = value.rpartition("Signature=")
        if mark and _SIGNATURE.fullmatch(signature):
            known = self._heads.get(head)
            if known is not None:
                if "x-amz-security-token" in headers:
                    raise AuthError(UNRECOGNIZED, MSG_UNRECOGNIZED)
                return known, signature
        auth = _parse_authorization(value)
        if "x-amz-security-token" in headers:
            raise AuthError(UNRECOGNIZED, MSG_UNRECOGNIZED)
        amz_date, _ = self._timestamp(headers)
        self._check_scope(auth, amz_date)
        if mark and auth.signature == signature:
            if len(self._heads) >= SIGNING_KEY_CACHE_SIZE:
                self._heads.clear()
            self._heads[head] = auth
        return auth, auth.signature

    def _timestamp(self, headers: dict[str, list[str]]) -> tuple[str, float]:
        """:func:`_timestamp`, remembering the last X-Amz-Date (requests share seconds)."""
        amz = headers.get("x-amz-date")
        last = self._last_date  # one read: other threads may replace it meanwhile
        if amz and amz[0] and amz[0] == last[0]:  # never the empty initial value
            return last[1]
        parsed = _timestamp(headers)
        if amz:
            self._last_date = (amz[0], parsed)
        return parsed

    def _signing_key(self, access_key: AccessKey, auth: _Authorization) -> bytes:
        cache_key = (access_key.secret_access_key, auth.date, auth.region, auth.service)
        key = self._keys.get(cache_key)
        if key is None:
            if len(self._keys) >= SIGNING_KEY_CACHE_SIZE:
                self._keys.clear()
            key = self._keys[cache_key] = signing_key(*cache_key)
        return key

    def _check_scope(self, auth: _Authorization, amz_date: str) -> None:
        if auth.terminator != TERMINATOR:
            raise AuthError(
                INVALID,
                f"Credential should be scoped with a valid terminator: '{TERMINATOR}'.",
            )
        if auth.service not in self._services:
            names = ", ".join(f"'{s}'" for s in sorted(self._services))
            raise AuthError(INVALID, f"Credential should be scoped to correct service: {names}.")
        if not _REGION.fullmatch(auth.region):
            raise AuthError(INVALID, "Credential should be scoped to a valid region.")
        if auth.date != amz_date[:8]:
            raise AuthError(
                INVALID,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{auth.date[:8]}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        if "host" not in auth.signed_headers:
            raise AuthError(INVALID, "'Host' must be a signed header.")

    def _check_clock(self, amz_date: str, sent: float) -> None:
        now = self._clock()
        if sent < now - self._max_skew:
            raise AuthError(
                INVALID,
                f"Signature expired: {amz_date} is now earlier than "
                f"{_fmt(now - self._max_skew)} ({_fmt(now)} - 15 min.)",
            )
        if sent > now + self._max_skew:
            raise AuthError(
                INVALID,
                f"Signature not yet current: {amz_date} is still later than "
                f"{_fmt(now + self._max_skew)} ({_fmt(now)} + 15 min.)",
            )


def _fmt(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%M%SZ")


def _payload_hash(headers: dict[str, list[str]], body: bytes) -> str:
    actual = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        return actual
    value = declared[0].strip()
    if not _SHA256_HEX.fullmatch(value) or value != actual:
        # UNSIGNED-PAYLOAD and streaming payloads are S3's; a KMS body is always signed.
        raise AuthError(INVALID, "The provided 'x-amz-content-sha256' header does not match.")
    return value


def _canonical_request(
    request: SignedParts,
    headers: dict[str, list[str]],
    auth: _Authorization,
    payload_hash: str,
) -> str:
    lines = []
    for name in auth.signed_headers:
        values = headers.get(name, ())
        if len(values) == 1:
            value = values[0]
            # most values need no trimming; " ".join(split()) is the slow way to learn that
            if value.isprintable() and value == value.strip() and "  " not in value:
                lines.append(f"{name}:{value}\n")
                continue
        lines.append(f"{name}:{','.join(_trim(v) for v in values)}\n")
    path = request.path
    return "\n".join(
        (
            request.method.upper(),
            "/" if path == "/" else canonical_uri(path),
            canonical_query(request.query),
            "".join(lines),
            auth.signed_list,
            payload_hash,
        )
    )
