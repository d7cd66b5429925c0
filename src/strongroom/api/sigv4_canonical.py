"""SigV4's canonical request and signing key (see :mod:`strongroom.api.sigv4`)."""

from __future__ import annotations

import hashlib
import hmac
import re
from itertools import chain
from operator import itemgetter
from typing import Protocol
from urllib.parse import quote, unquote_to_bytes

from strongroom.api.sigv4_header import INVALID, TERMINATOR, Authorization
from strongroom.errors import AuthError

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


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


_CLEAN: set[str] = set()
"""Header values known to need no trimming (host, content type, target...): bounded, and
emptied when full, so values a client makes up only cost the check they would anyway."""
_MAX_CLEAN = 4096


def _trim(value: str) -> str:
    return " ".join(value.split())


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive the SigV4 signing key for one day, region and service."""
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    key = hmac.digest(key, region.encode("utf-8"), "sha256")
    key = hmac.digest(key, service.encode("utf-8"), "sha256")
    return hmac.digest(key, TERMINATOR.encode("utf-8"), "sha256")


def payload_hash(headers: dict[str, list[str]], body: bytes) -> str:
    """The body's hex SHA-256, which ``x-amz-content-sha256`` must equal if sent."""
    actual = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        return actual
    value = declared[0].strip()
    if not _SHA256_HEX.fullmatch(value) or value != actual:
        # UNSIGNED-PAYLOAD and streaming payloads are S3's; a KMS body is always signed.
        raise AuthError(INVALID, "The provided 'x-amz-content-sha256' header does not match.")
    return value


def canonical_request(
    request: SignedParts,
    headers: dict[str, list[str]],
    auth: Authorization,
    payload_hash: str,
) -> str:
    """The canonical request of ``request`` as ``auth`` signs it."""
    lines = []
    clean = _CLEAN
    for name in auth.signed_headers:
        values = headers.get(name, ())
        if len(values) == 1:
            value = values[0]
            if value in clean:  # seen before and needing no trimming (most values)
                lines.append(f"{name}:{value}\n")
                continue
            # " ".join(split()) is the slow way to learn that a value needs no trimming
            if value.isprintable() and value == value.strip() and "  " not in value:
                if len(clean) >= _MAX_CLEAN:
                    clean.clear()
                clean.add(value)
                lines.append(f"{name}:{value}\n")
                continue
        lines.append(f"{name}:{','.join(_trim(v) for v in values)}\n")
    path = request.path
    return "\n".join(
        (
            request.method.upper(),
            "/" if path == "/" else canonical_uri(path),
            canonical_query(query) if (query := request.query) else "",
            "".join(lines),
            auth.signed_list,
            payload_hash,
        )
    )


_chain = chain.from_iterable


class HeadTemplate:
    """:func:`canonical_request` of ``POST /`` without a query, for one signed header list.

    What every SDK sends: the request line and the header names are the same for every
    request signed under one ``Authorization`` head, so they are a ``%`` template made
    once, and a request only fills in its header values (each sent once and needing no
    trimming, as :func:`canonical_request` learns and remembers) and its payload hash, in
    a few C calls. Anything else is :func:`canonical_request`'s, which gives the same text.
    """

    __slots__ = ("_count", "_template", "_values_of")

    def __init__(self, auth: Authorization) -> None:
        names = auth.signed_headers
        self._count = len(names)
        # itemgetter of one name returns the value itself, not a tuple: the general way
        self._values_of = itemgetter(*names) if len(names) > 1 else None
        # "%" may be in a header name (a token character): doubled, it stays itself
        lines = "".join(f"{name}:%s\n" for name in (n.replace("%", "%%") for n in names))
        self._template = f"POST\n/\n\n{lines}\n{auth.signed_list.replace('%', '%%')}\n"

    def canonical(
        self,
        request: SignedParts,
        headers: dict[str, list[str]],
        auth: Authorization,
        payload_hash: str,
    ) -> str:
        """:func:`canonical_request` of ``request`` as ``auth`` (this head's) signs it."""
        values_of = self._values_of
        if (
            values_of is not None
            and request.method == "POST"
            and request.path == "/"
            and not request.query
        ):
            try:
                found: tuple[list[str], ...] = values_of(headers)
            except KeyError:
                found = ()
            # every name's values in one C pass: one value each when there are as many as
            # names and no list is empty (then none holds two); none needing trimming
            values = tuple(_chain(found))
            if len(values) == self._count and all(found) and all(map(_CLEAN.__contains__, values)):
                return self._template % values + payload_hash
        return canonical_request(request, headers, auth, payload_hash)
