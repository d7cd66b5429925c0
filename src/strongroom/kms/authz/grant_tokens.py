"""Grant tokens: unforgeable names of one grant, usable until it is retired or revoked.

``base64url(version || len-prefixed (account, key id, grant id, nonce) || HMAC-SHA256(K_g,
label || version || ...))`` with the grant's token key ``K_g = HMAC-SHA256(K_tokens,
lp(account) || lp(key id) || lp(grant id))``. ``K_tokens`` is derived from the store's MAC
key (under the root of trust), so the database holds nothing that makes or checks a token:
a copy of it mints none. Every ``CreateGrant`` returns a fresh token for the same grant.
Version 1 tokens (a secret per grant, kept in the grant record) are no longer accepted.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from strongroom.crypto.hazmat import constant_time_equal, hmac_sha256, length_prefixed, random_bytes
from strongroom.errors import InvalidGrantTokenError
from strongroom.kms.authz.grants import GRANT_ID, GrantRecord
from strongroom.ports import StoreTx
from strongroom.ports.sealed_store import secrets_of

_TOKEN_VERSION = 2
_TOKEN_LABEL = b"strongroom grant token v2"
TOKEN_PURPOSE = "grant-token"  # noqa: S105 - a label, not a secret
"""The purpose of the store secret grant token keys are derived from."""
_NONCE_BYTES = 16
_MAC_BYTES = 32


@dataclass(frozen=True, slots=True)
class TokenRef:
    """What a grant token claims: which grant of which key of which account."""

    account_id: str
    key_id: str
    grant_id: str
    body: bytes
    mac: bytes


def _grant_key(tx: StoreTx, grant: GrantRecord) -> bytes:
    """The token key of one grant, from the store's secret (never stored)."""
    ids = length_prefixed(grant.account_id.encode(), grant.key_id.encode(), grant.grant_id.encode())
    return hmac_sha256(secrets_of(tx).purpose_key(TOKEN_PURPOSE), ids)


def issue_token(tx: StoreTx, grant: GrantRecord) -> str:
    """Return a fresh grant token for ``grant`` (``tx``: a transaction of the sealed store)."""
    body = length_prefixed(
        grant.account_id.encode(),
        grant.key_id.encode(),
        grant.grant_id.encode(),
        random_bytes(_NONCE_BYTES),
    )
    raw = bytes([_TOKEN_VERSION]) + body
    mac = hmac_sha256(_grant_key(tx, grant), _TOKEN_LABEL + raw)
    return base64.urlsafe_b64encode(raw + mac).rstrip(b"=").decode("ascii")


def _invalid() -> InvalidGrantTokenError:
    return InvalidGrantTokenError("The grant token is not valid.")


def read_token(token: str) -> TokenRef:
    """Decode a grant token's claims; any malformed token raises ``InvalidGrantTokenError``.

    The claims are only trusted after :func:`token_is_for` checks the MAC.
    """
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _invalid() from None
    if len(data) < 1 + _MAC_BYTES or data[0] != _TOKEN_VERSION:
        raise _invalid()
    raw, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
    parts: list[bytes] = []
    offset = 1
    while offset < len(raw) and len(parts) < 4:
        if offset + 4 > len(raw):
            raise _invalid()
        (size,) = struct.unpack_from(">I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise _invalid()
        parts.append(raw[offset : offset + size])
        offset += size
    if len(parts) != 4 or offset != len(raw) or len(parts[3]) != _NONCE_BYTES:
        raise _invalid()
    try:
        account, key_id, grant_id = (p.decode("ascii") for p in parts[:3])
    except UnicodeDecodeError:
        raise _invalid() from None
    if not GRANT_ID.fullmatch(grant_id) or not key_id or "/" in key_id:
        raise _invalid()
    return TokenRef(account, key_id, grant_id, raw, mac)


def token_is_for(tx: StoreTx, ref: TokenRef, grant: GrantRecord) -> bool:
    """Whether the token ``ref`` was issued for ``grant`` (constant-time MAC check)."""
    expected = hmac_sha256(_grant_key(tx, grant), _TOKEN_LABEL + ref.body)
    return constant_time_equal(expected, ref.mac) and (
        ref.account_id,
        ref.key_id,
        ref.grant_id,
    ) == (grant.account_id, grant.key_id, grant.grant_id)
