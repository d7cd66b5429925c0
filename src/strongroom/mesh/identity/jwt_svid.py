"""JWT-SVIDs: ES256-signed JWTs (JWS compact serialisation) per the SPIFFE JWT-SVID standard.

A token is ``base64url(header) . base64url(claims) . base64url(r || s)`` with header
``{"alg": "ES256", "kid": <key id>, "typ": "JWT"}`` and claims ``sub`` (the SPIFFE ID),
``aud`` (a list of audiences), ``exp`` and ``iat``. The signature is ECDSA P-256 over
SHA-256 from ``cryptography``; only the JOSE framing is done here.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from strongroom.errors import ValidationError
from strongroom.mesh.identity.authority import JwtKey
from strongroom.mesh.identity.spiffe_id import SpiffeId

ALGORITHM = "ES256"
COORDINATE_BYTES = 32
MAX_TOKEN_LENGTH = 16384


@dataclass(frozen=True, slots=True)
class JwtSvid:
    """A JWT-SVID: the token and the claims it carries."""

    token: str
    spiffe_id: SpiffeId
    audience: tuple[str, ...]
    expiry: float
    issued_at: float

    def claims(self) -> dict[str, Any]:
        """The claims as a JSON-ready dict (``ValidateJWTSVID`` returns them)."""
        return {
            "sub": str(self.spiffe_id),
            "aud": list(self.audience),
            "exp": int(self.expiry),
            "iat": int(self.issued_at),
        }


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Reverse :func:`b64url`; ``ValidationError`` for anything that is not base64url."""
    if any(c in text for c in "=+/ \n"):
        raise ValidationError("the token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error) as exc:
        raise ValidationError("the token is not base64url") from exc


def _json_part(data: object) -> str:
    return b64url(json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def sign_jwt_svid(
    key: JwtKey, spiffe_id: SpiffeId, audience: Iterable[str], now: float, ttl_s: float
) -> JwtSvid:
    """A signed JWT-SVID for ``spiffe_id``, valid for ``ttl_s`` seconds from ``now``."""
    audiences = tuple(audience)
    if not audiences or any(not a for a in audiences):
        raise ValidationError("a JWT-SVID needs at least one non-empty audience")
    issued = int(now)
    expiry = int(now + ttl_s)
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
    claims = {"sub": str(spiffe_id), "aud": list(audiences), "exp": expiry, "iat": issued}
    signing_input = f"{_json_part(header)}.{_json_part(claims)}"
    der = key.private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big")
    token = f"{signing_input}.{b64url(raw)}"
    return JwtSvid(token, spiffe_id, audiences, float(expiry), float(issued))


def _object(part: str, what: str) -> dict[str, object]:
    try:
        value = json.loads(b64url_decode(part))
    except ValueError as exc:
        raise ValidationError(f"the token's {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise ValidationError(f"the token's {what} is not a JSON object")
    return value


def verify_jwt_svid(token: str, audience: str, key: JwtKey, now: float) -> JwtSvid:
    """Check a JWT-SVID against ``key``: signature, ``exp``, ``aud`` holds ``audience``.

    Raises ``ValidationError`` saying what is wrong (never echoing the token).
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValidationError("the token is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise ValidationError("a JWT-SVID has three dot-separated parts")
    header = _object(parts[0], "header")
    if header.get("alg") != ALGORITHM:
        raise ValidationError(f"the token's algorithm is not {ALGORITHM}")
    if header.get("typ") not in (None, "JWT", "JOSE"):
        raise ValidationError("the token's type is not JWT")
    if header.get("kid") != key.kid:
        raise ValidationError("the token is signed with a key this trust domain does not have")
    raw = b64url_decode(parts[2])
    if len(raw) != 2 * COORDINATE_BYTES:
        raise ValidationError("the token's signature is malformed")
    der = encode_dss_signature(
        int.from_bytes(raw[:COORDINATE_BYTES], "big"), int.from_bytes(raw[COORDINATE_BYTES:], "big")
    )
    try:
        key.public_key.verify(
            der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature as exc:
        raise ValidationError("the token's signature does not verify") from exc
    claims = _object(parts[1], "claims")
    return _checked_claims(token, claims, audience, now)


def _checked_claims(token: str, claims: dict[str, object], audience: str, now: float) -> JwtSvid:
    sub, aud, exp, iat = claims.get("sub"), claims.get("aud"), claims.get("exp"), claims.get("iat")
    if not isinstance(sub, str):
        raise ValidationError("the token has no subject")
    audiences = (aud,) if isinstance(aud, str) else aud
    if not isinstance(audiences, (list, tuple)) or not all(isinstance(a, str) for a in audiences):
        raise ValidationError("the token has no audience")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise ValidationError("the token has no expiry")
    if now >= exp:
        raise ValidationError("the token has expired")
    if audience not in audiences:
        raise ValidationError("the token is not for this audience")
    issued = float(iat) if isinstance(iat, (int, float)) and not isinstance(iat, bool) else 0.0
    return JwtSvid(token, SpiffeId.parse(sub), tuple(audiences), float(exp), issued)
