"""SigV4's ``Authorization`` header and request time, parsed and checked (no signature yet).

The header names the algorithm, the credential scope
``<key id>/<date>/<region>/<service>/aws4_request``, the signed header names and the
signature; the request time comes from ``X-Amz-Date`` (or ``Date``). The error types and
messages are AWS's own, so clients show what they would show against AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from strongroom.errors import AuthError

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"

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
SIGNATURE = re.compile(r"[0-9a-f]{64}")
"""A signature as AWS sends it: 64 lowercase hex digits."""
_HEADER_NAME = r"[!#$%&'*+.^_`|~0-9a-z-]+"
_HEADER_NAMES = re.compile(f"{_HEADER_NAME}(?:;{_HEADER_NAME})*")


@dataclass(frozen=True, slots=True)
class Authorization:
    """A parsed ``Authorization`` header."""

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


def parse_authorization(value: str) -> Authorization:
    """Parse an ``Authorization`` header (its scope is checked by the verifier)."""
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
    return Authorization(
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


def request_time(headers: dict[str, list[str]]) -> tuple[str, float]:
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


def format_time(epoch: float) -> str:
    """``epoch`` as ``YYYYMMDDTHHMMSSZ``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%M%SZ")
