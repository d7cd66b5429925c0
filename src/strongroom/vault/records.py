"""Vault front-end records: tokens, mounts and versioned KV secrets, in the key store.

- token: ``("_global", "vault.token", SHA-256(token))`` -> JSON (tenant, mount, name,
  accessor), wrapped by the root of trust and bound to the hash, so a database writer
  cannot mint a token; the token itself is never stored.
- mount: ``(tenant, "vault.mount", name)`` -> JSON (type ``kv`` or ``transit``, KMS key).
- KV secret: ``(tenant, "vault.kv", "<mount>/<path>")`` -> JSON versions, each the secret's
  data map sealed as an envelope: a data key from the key service under the mount's KMS
  key (encryption context names tenant, mount, path, version) and the JSON wrapped by it
  with :func:`strongroom.crypto.wrap.wrap_key`. Rotation adds a version; retiring a version
  deletes its sealed data (crypto-shredding that version only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from strongroom.crypto.wrap import UnwrapFailed, key_identity, unwrap_key, wrap_key
from strongroom.data.keys import DataKeyProvider
from strongroom.errors import NotFoundError, StoreError, ValidationError
from strongroom.kms.caller import Caller
from strongroom.ports import RootOfTrust, StoreTx

GLOBAL = "_global"
TOKEN_KIND = "vault.token"  # noqa: S105 - a record kind, not a secret
MOUNT_KIND = "vault.mount"
KV_KIND = "vault.kv"
RECORD_VERSION = 1
MAX_SECRET_BYTES = 64 * 1024
MOUNT_TYPES = ("kv", "transit")


def token_hash(token: str) -> str:
    """The SHA-256 of a token: its record's name."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a token may do: one mount of one tenant."""

    tenant: str
    mount: str
    name: str
    accessor: str
    caller: Caller = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        caller = Caller(
            tenant=self.tenant,
            principal_arn=f"arn:aws:iam::{self.tenant}:user/vault/{self.name}",
            access_key_id=f"vault:{self.accessor}",
        )
        object.__setattr__(self, "caller", caller)


def new_token(
    tx: StoreTx, root: RootOfTrust, tenant: str, mount: str, name: str
) -> tuple[str, TokenInfo]:
    """Create a token for ``mount`` of ``tenant``; return it (shown once) and its info."""
    load_mount(tx, tenant, mount)
    token = "hvs." + secrets.token_urlsafe(32)
    digest = token_hash(token)
    info = TokenInfo(tenant, mount, name, digest[:24])
    doc = {"v": RECORD_VERSION, "tenant": tenant, "mount": mount, "name": name}
    wrapped = root.wrap(json.dumps(doc).encode("utf-8"), key_identity(TOKEN_KIND, digest))
    tx.put(GLOBAL, TOKEN_KIND, digest, wrapped)
    return token, info


def read_token(tx: StoreTx, root: RootOfTrust, token: str) -> TokenInfo | None:
    """The token's info, or ``None`` for an unknown (or revoked) token."""
    digest = token_hash(token)
    raw = tx.get(GLOBAL, TOKEN_KIND, digest)
    if raw is None:
        return None
    doc = json.loads(root.unwrap(raw, key_identity(TOKEN_KIND, digest)))
    return TokenInfo(doc["tenant"], doc["mount"], doc["name"], digest[:24])


def list_tokens(tx: StoreTx, root: RootOfTrust) -> list[TokenInfo]:
    """Every token's info (never the token)."""
    found = []
    for digest, raw in tx.scan(GLOBAL, TOKEN_KIND):
        doc = json.loads(root.unwrap(raw, key_identity(TOKEN_KIND, digest)))
        found.append(TokenInfo(doc["tenant"], doc["mount"], doc["name"], digest[:24]))
    return found


def revoke_token(tx: StoreTx, accessor: str) -> None:
    """Delete the token whose accessor (first 24 hex digits of its hash) is ``accessor``."""
    if len(accessor) < 16:
        raise ValidationError("give the 24-character accessor of the token")
    hits = [d for d, _ in tx.scan(GLOBAL, TOKEN_KIND, prefix=accessor.lower())]
    if len(hits) != 1:
        raise NotFoundError(f"no Vault token with accessor {accessor[:24]}")
    tx.delete(GLOBAL, TOKEN_KIND, hits[0])


# -- mounts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mount:
    """A mount of a tenant: its type and the KMS key sealing what it holds."""

    name: str
    type: str
    kms_key: str


def add_mount(tx: StoreTx, tenant: str, mount: Mount) -> None:
    """Create a mount (``AlreadyExists`` is a ``ValidationError``)."""
    if mount.type not in MOUNT_TYPES:
        raise ValidationError("a mount is of type kv or transit")
    if not mount.name or "/" in mount.name or len(mount.name) > 64 or mount.name in ("sys", "auth"):
        raise ValidationError("a mount name is 1-64 characters without '/' (not sys or auth)")
    doc = {"v": RECORD_VERSION, "type": mount.type, "kmsKey": mount.kms_key}
    if not tx.insert(tenant, MOUNT_KIND, mount.name, json.dumps(doc).encode("utf-8")):
        raise ValidationError(f"mount {mount.name} exists already")


def load_mount(tx: StoreTx, tenant: str, name: str) -> Mount:
    """The mount ``name`` of ``tenant`` (``NotFoundError`` if none)."""
    raw = tx.get(tenant, MOUNT_KIND, name)
    if raw is None:
        raise NotFoundError(f"no mount {name[:64]!r}")
    doc = json.loads(raw)
    return Mount(name, doc["type"], doc["kmsKey"])


# -- KV v2 secrets --------------------------------------------------------------------------


def _context(tenant: str, mount: str, path: str, version: int) -> dict[str, str]:
    return {
        "strongroom:front-end": "vault",
        "strongroom:tenant": tenant,
        "vault:secret": f"{mount}/{path}",
        "vault:version": str(version),
    }


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def load_secret(tx: StoreTx, tenant: str, mount: str, path: str) -> dict[str, Any] | None:
    """The stored versions document of a secret, or ``None``."""
    raw = tx.get(tenant, KV_KIND, f"{mount}/{path}")
    if raw is None:
        return None
    try:
        doc: dict[str, Any] = json.loads(raw)
    except ValueError as exc:
        raise StoreError("a Vault secret record is damaged") from exc
    return doc


def seal_version(
    keys: DataKeyProvider,
    mount: Mount,
    tenant: str,
    path: str,
    version: int,
    data: dict[str, Any],
    now: float,
) -> dict[str, Any]:
    """One sealed version of a secret."""
    plain = json.dumps(data, sort_keys=True).encode("utf-8")
    if len(plain) > MAX_SECRET_BYTES:
        raise ValidationError("secret too large")
    data_key = keys.generate_data_key(mount.kms_key, _context(tenant, mount.name, path, version))
    identity = key_identity("vault", tenant, mount.name, path, version)
    return {
        "version": version,
        "created": now,
        "destroyed": False,
        "sealedKey": _b64(data_key.wrapped),
        "sealed": _b64(wrap_key(data_key.plaintext, plain, identity)),
        "kmsKey": data_key.key_arn,
    }


def open_version(
    keys: DataKeyProvider, tenant: str, mount: str, path: str, entry: dict[str, Any]
) -> dict[str, Any]:
    """The data map of one sealed version (through the key service: key state applies)."""
    version = int(entry["version"])
    data_key = keys.decrypt_data_key(
        base64.b64decode(entry["sealedKey"]),
        _context(tenant, mount, path, version),
        entry["kmsKey"],
    )
    try:
        plain = unwrap_key(
            data_key,
            base64.b64decode(entry["sealed"]),
            key_identity("vault", tenant, mount, path, version),
        )
    except UnwrapFailed as exc:
        raise StoreError("a Vault secret version does not unwrap") from exc
    result: dict[str, Any] = json.loads(plain)
    return result


def json_bytes(doc: dict[str, Any]) -> bytes:
    """A record document as stored."""
    return json.dumps(doc, sort_keys=True).encode("utf-8")
