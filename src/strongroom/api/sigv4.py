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

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as keyed_hmac

from strongroom.api.sigv4_canonical import (
    HeadTemplate,
    SignedParts,
    canonical_query,
    canonical_uri,
    payload_hash,
    signing_key,
)
from strongroom.api.sigv4_header import (
    ALGORITHM,
    INCOMPLETE,
    INVALID,
    MISSING_TOKEN,
    MSG_MISMATCH,
    MSG_MISSING,
    MSG_UNRECOGNIZED,
    SIGNATURE,
    TERMINATOR,
    UNRECOGNIZED,
    Authorization,
    format_time,
    parse_authorization,
    request_time,
)
from strongroom.errors import AuthError
from strongroom.kms.caller import AccessKey

__all__ = [
    "ALGORITHM",
    "INCOMPLETE",
    "INVALID",
    "MISSING_TOKEN",
    "TERMINATOR",
    "UNRECOGNIZED",
    "SigV4Verifier",
    "SignedParts",
    "SignedRequest",
    "Verified",
    "canonical_query",
    "canonical_uri",
    "signing_key",
]

MAX_CLOCK_SKEW_SECONDS = 15 * 60
DEFAULT_SERVICES = frozenset({"kms", "sts"})
SIGNING_KEY_CACHE_SIZE = 4096

_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# The header that names the operation: signed whenever sent, so it cannot be swapped.
_MUST_SIGN_IF_SENT = ("x-amz-target",)
_TO_SIGN = ALGORITHM + "\n"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


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


class _Signed:
    """An ``Authorization`` head (all but the signature), parsed and checked.

    With what every request signed under it needs again: derived from the header alone,
    and the signing HMAC and :class:`Verified` of the access key that last signed under it.
    """

    __slots__ = ("auth", "last", "scope_line", "template", "unsigned")

    def __init__(self, auth: Authorization) -> None:
        self.auth = auth
        self.template = HeadTemplate(auth)
        self.scope_line = f"\n{auth.scope}\n"
        # the headers that must be signed if sent and are not: each request checks these
        self.unsigned = tuple(n for n in _MUST_SIGN_IF_SENT if n not in auth.signed_headers)
        # (access key, its signing HMAC for this scope, its Verified): one tuple, replaced
        # whole, so a thread reads the three of one key
        self.last: tuple[AccessKey, keyed_hmac.HMAC, Verified] | None = None

    def __repr__(self) -> str:
        return "_Signed(<authorization>)"


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
        # Signing keys change once a day per key, region and service: derive each once,
        # and key its HMAC once (a copy per request costs a third of hmac.digest, which
        # looks the algorithm up in OpenSSL 3 on every call: about 3 µs of a request).
        self._keys: dict[tuple[str, str, str, str], keyed_hmac.HMAC] = {}
        self._last_date: tuple[str, tuple[str, float]] = ("", ("", 0.0))
        # Authorization headers up to their signature, parsed and scope-checked
        self._heads: dict[str, _Signed] = {}
        self._verified: dict[tuple[str, str, str], Verified] = {}

    def verify(self, request: SignedParts, by_name: dict[str, list[str]] | None = None) -> Verified:
        """Return who signed ``request``, or raise :class:`~strongroom.errors.AuthError`.

        ``request`` is a :class:`SignedRequest` or anything with the same attributes
        (the API hands in its own request object rather than copying it into one).
        ``by_name``, if given, maps each lowercase header name of ``request`` to its
        values in the order received (the API builds it as it reads the headers).
        """
        headers = by_name if by_name is not None else _by_name(request.headers)
        authorization = headers.get("authorization")
        if not authorization:
            raise AuthError(MISSING_TOKEN, MSG_MISSING)
        if len(authorization) > 1:
            raise AuthError(INCOMPLETE, "Only one Authorization header may be sent.")
        signed, signature = self._authorization(authorization[0], headers)
        auth = signed.auth
        # self._timestamp, its common case inlined (requests share their X-Amz-Date)
        amz = headers.get("x-amz-date")
        last = self._last_date  # one read: other threads may replace it meanwhile
        if amz and amz[0] and amz[0] == last[0]:
            amz_date, sent = last[1]
        else:
            amz_date, sent = self._timestamp(headers)
        if auth.date != amz_date[:8]:
            self._check_scope(auth, amz_date)  # raises, naming both dates
        for name in signed.unsigned:
            if name in headers:
                raise AuthError(INVALID, f"'{name}' must be a signed header.")
        now = self._clock()
        if not now - self._max_skew <= sent <= now + self._max_skew:
            self._check_clock(amz_date, sent)  # raises, in AWS's words
        access_key = self._lookup(auth.access_key_id)
        if access_key is None:
            raise AuthError(UNRECOGNIZED, MSG_UNRECOGNIZED)
        # payload_hash, its common case inlined (no x-amz-content-sha256 header)
        body = request.body
        if "x-amz-content-sha256" in headers:
            hashed = payload_hash(headers, body)
        else:
            hashed = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        canonical = signed.template.canonical(request, headers, auth, hashed)
        string_to_sign = (
            f"{_TO_SIGN}{amz_date}{signed.scope_line}"
            f"{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
        )
        known = signed.last  # one read: other threads may replace it meanwhile
        verified: Verified | None = None
        if known is not None and known[0] is access_key:
            signing, verified = known[1], known[2]
        else:
            # the access key is another (or the same, looked up again): its own HMAC and
            # Verified, from the verifier's caches (shared by every head of the key)
            signing = self._signing_key(access_key, auth)
        mac = signing.copy()
        mac.update(string_to_sign.encode("utf-8"))
        expected = mac.finalize().hex()
        # both ASCII text: ``signature`` is 64 hex digits or empty (see _authorization)
        if not hmac.compare_digest(expected, signature):
            raise AuthError(INVALID, MSG_MISMATCH)
        if verified is None:
            verified = self._verified_as(access_key, auth)
            signed.last = (access_key, signing, verified)
        return verified

    def _verified_as(self, access_key: AccessKey, auth: Authorization) -> Verified:
        """The :class:`Verified` of this key, region and service (one object per triple)."""
        memo_key = (auth.access_key_id, auth.region, auth.service)
        verified = self._verified.get(memo_key)
        if verified is None or verified.access_key is not access_key:
            if len(self._verified) >= SIGNING_KEY_CACHE_SIZE:
                self._verified.clear()
            verified = Verified(access_key=access_key, region=auth.region, service=auth.service)
            self._verified[memo_key] = verified
        return verified

    def _authorization(self, value: str, headers: dict[str, list[str]]) -> tuple[_Signed, str]:
        """The parsed Authorization header and its signature, checked but for the date.

        The signature is returned only if it is 64 hex digits (else ``""``, which no
        signature matches).

        A client sends the same header but for the signature all day long: the part
        before the final ``Signature=`` is parsed and checked once and remembered (only
        when the full parse finds exactly that signature, so a remembered head parses
        the same with any other 64 ASCII letters and digits after it).
        """
        head, mark, signature = value.rpartition("Signature=")
        # 64 ASCII letters and digits parse the same after a remembered head whatever they
        # are (no comma, space or "="); any that are not lowercase hex then fail the
        # compare, as the full parse's "" does. bytes.isalnum of the ASCII bytes is a
        # table lookup a byte (str.isalnum looks each character up in Unicode's tables).
        if (
            mark
            and len(signature) == 64
            and signature.isascii()
            and signature.encode("ascii").isalnum()
        ):
            known = self._heads.get(head)
            if known is not None:
                if "x-amz-security-token" in headers:
                    raise AuthError(UNRECOGNIZED, MSG_UNRECOGNIZED)
                return known, signature
        auth = parse_authorization(value)
        if "x-amz-security-token" in headers:
            raise AuthError(UNRECOGNIZED, MSG_UNRECOGNIZED)
        amz_date, _ = self._timestamp(headers)
        self._check_scope(auth, amz_date)
        signed = _Signed(auth)
        if mark and auth.signature == signature:
            if len(self._heads) >= SIGNING_KEY_CACHE_SIZE:
                self._heads.clear()
            self._heads[head] = signed
        return signed, auth.signature if SIGNATURE.fullmatch(auth.signature) else ""

    def _timestamp(self, headers: dict[str, list[str]]) -> tuple[str, float]:
        """:func:`request_time`, remembering the last X-Amz-Date (requests share seconds)."""
        amz = headers.get("x-amz-date")
        last = self._last_date  # one read: other threads may replace it meanwhile
        if amz and amz[0] and amz[0] == last[0]:  # never the empty initial value
            return last[1]
        parsed = request_time(headers)
        if amz:
            self._last_date = (amz[0], parsed)
        return parsed

    def _signing_key(self, access_key: AccessKey, auth: Authorization) -> keyed_hmac.HMAC:
        """An HMAC-SHA256 keyed with the signing key, never finalised: copy it to use it."""
        cache_key = (access_key.secret_access_key, auth.date, auth.region, auth.service)
        mac = self._keys.get(cache_key)
        if mac is None:
            if len(self._keys) >= SIGNING_KEY_CACHE_SIZE:
                self._keys.clear()
            mac = keyed_hmac.HMAC(signing_key(*cache_key), hashes.SHA256())
            self._keys[cache_key] = mac
        return mac

    def _check_scope(self, auth: Authorization, amz_date: str) -> None:
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
                f"{format_time(now - self._max_skew)} ({format_time(now)} - 15 min.)",
            )
        if sent > now + self._max_skew:
            raise AuthError(
                INVALID,
                f"Signature not yet current: {amz_date} is still later than "
                f"{format_time(now + self._max_skew)} ({format_time(now)} + 15 min.)",
            )


def _by_name(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Each header's values, by lowercase name, in the order received."""
    headers: dict[str, list[str]] = {}
    for name, value in pairs:
        name = name.lower()
        found = headers.get(name)
        if found is None:
            headers[name] = [value]
        else:
            found.append(value)
    return headers
