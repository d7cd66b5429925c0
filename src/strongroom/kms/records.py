"""The records the key service keeps, and how they are serialised into the store.

Every record is a frozen dataclass with ``to_bytes``/``from_bytes`` (JSON, bytes fields as
base64). Wrapped key material is the only secret-derived content, and only ever wrapped.
Store layout (``tenant``, ``kind``, ``name``):

=================  ==========================  ===================================
kind               name                        record
=================  ==========================  ===================================
``tenant``         ``self``                    :class:`TenantRecord`
``principal``      access key id               :class:`PrincipalRecord`
``key``            key row name (below)        :class:`KeyRecord`
``keyver``         ``<key id>/<version:010>``  :class:`KeyVersionRecord`
``alias``          ``<region>/<alias name>``   :class:`AliasRecord`
``grant``          ``<key row>/<grant id>``    grant (``strongroom.kms.authz.grants``)
``userkey``        ``<key id>/<user id>``      :class:`UserKeyRecord`
=================  ==========================  ===================================

A key's row name is its key id, except for multi-Region keys (``mrk-`` ids): the primary
and each replica share the key id, one per region, so their rows are named
``<key id>@<region>`` (:func:`key_row_name`). The related keys of a multi-Region key share
their ``keyver`` rows (one key material, wrapped once, bound to the key id) and their
user keys; each has its own ``key`` row, grants, aliases, tags and policy. Multi-Region
keys with imported material (origin ``EXTERNAL``) are the exception: as in AWS KMS, the
material is imported into each related key on its own (and deleted or expires on its
own), so each keeps its own version rows, named ``<key row>/<version:010>``
(:func:`key_version_prefix`); the material is the same in every related key, which
:mod:`strongroom.kms.ops.imports` checks by its ``KeyMaterialId``.

Access keys are also indexed globally under tenant ``_global``, kind ``accesskey``, so a
SigV4 request finds its tenant from its access key id alone.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Self

from strongroom.ports.store import GLOBAL_TENANT as GLOBAL_TENANT  # its home is the ports

MRK_PREFIX = "mrk-"
"""Key ids of multi-Region keys start with this (then 32 hex digits, as AWS KMS)."""

EXTERNAL = "EXTERNAL"
"""The ``Origin`` of a key with imported material (:attr:`KeyRecord.origin`)."""


def is_multi_region_id(key_id: str) -> bool:
    """Whether ``key_id`` names a multi-Region key."""
    return key_id.startswith(MRK_PREFIX)


def key_row_name(key_id: str, region: str) -> str:
    """The store name of the key row of ``key_id`` in ``region`` (see the module docs)."""
    return f"{key_id}@{region}" if key_id.startswith(MRK_PREFIX) else key_id


def key_id_of_row(name: str) -> str:
    """The key id a key row name (or a grant's key reference) names."""
    return name.split("@", 1)[0]


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        # Keys starting with "$" get one more "$", so user data (a tag key "$b64", say)
        # never reads back as the bytes marker.
        return {("$" + k if k.startswith("$") else k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$b64"}:
            return base64.b64decode(value["$b64"])
        return {(k[1:] if k.startswith("$") else k): _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class JsonRecord:
    """Mixin: JSON (de)serialisation of a dataclass record with bytes fields."""

    def to_bytes(self) -> bytes:
        """Serialise the record."""
        # fields with init=False are derived from the others (KeyRecord.arn): not stored
        data = {
            f.name: _encode(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.init
        }
        return json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Parse a record written by :meth:`to_bytes` (unknown fields are ignored)."""
        data = _decode(json.loads(raw))
        names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True, slots=True)
class TenantRecord(JsonRecord):
    """A tenant (one customer = one AWS account id) and its wrapped key-encryption key."""

    account_id: str
    name: str
    wrapped_kek: bytes
    created_at: float
    state: str = "ACTIVE"

    def __repr__(self) -> str:
        return f"TenantRecord(account_id={self.account_id!r}, name={self.name!r})"


@dataclass(frozen=True, slots=True)
class PrincipalRecord(JsonRecord):
    """A principal's access key; the secret is kept only wrapped by the root of trust."""

    access_key_id: str
    account_id: str
    user_name: str
    wrapped_secret: bytes
    created_at: float
    is_admin: bool = False
    status: str = "Active"
    is_mesh_agent: bool = False
    is_mesh_admin: bool = False

    @property
    def arn(self) -> str:
        """``arn:aws:iam::<account>:user/<name>`` (or ``:root`` for the tenant admin)."""
        if self.user_name == "root":
            return f"arn:aws:iam::{self.account_id}:root"
        return f"arn:aws:iam::{self.account_id}:user/{self.user_name}"

    def __repr__(self) -> str:
        return f"PrincipalRecord(access_key_id={self.access_key_id!r}, arn={self.arn!r})"


@dataclass(frozen=True, slots=True)
class KeyRecord(JsonRecord):
    """A KMS key's metadata and state; its material lives in :class:`KeyVersionRecord` rows."""

    key_id: str
    account_id: str
    region: str
    key_spec: str
    key_usage: str
    origin: str
    key_state: str
    creation_date: float
    description: str = ""
    current_version: int = 0
    deletion_date: float | None = None
    pending_window_days: int | None = None
    rotation_enabled: bool = False
    rotation_period_days: int | None = None
    next_rotation_date: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    policy: str = ""
    valid_to: float | None = None
    expiration_model: str | None = None
    state_before_deletion: str | None = None
    materials_valid_to: float | None = None
    """Imported keys: the earliest ``ValidTo`` of the materials bound to the key."""
    primary_region: str | None = None
    """Multi-Region keys: the region of the primary key (the same in every related key)."""
    arn: str = field(init=False, repr=False, compare=False)
    """The key ARN (made once with the record, not stored: each operation reads it often)."""

    def __post_init__(self) -> None:
        arn = f"arn:aws:kms:{self.region}:{self.account_id}:key/{self.key_id}"
        object.__setattr__(self, "arn", arn)

    @property
    def row_name(self) -> str:
        """The store name of this key's row (:func:`key_row_name`)."""
        return key_row_name(self.key_id, self.region)

    @property
    def multi_region(self) -> bool:
        """Whether this is a multi-Region key (a primary or a replica)."""
        return self.key_id.startswith(MRK_PREFIX)

    @property
    def is_replica(self) -> bool:
        """Whether this is a multi-Region replica key."""
        return self.multi_region and self.primary_region != self.region


@dataclass(frozen=True, slots=True)
class KeyVersionRecord(JsonRecord):
    """One version of a key's material, wrapped by the tenant KEK.

    Symmetric and HMAC keys keep ``wrapped_material``; asymmetric keys keep the wrapped
    private key (DER, PKCS#8) and the public key (DER, SubjectPublicKeyInfo).
    """

    key_id: str
    version: int
    created_at: float
    wrapped_material: bytes
    rotation_type: str = "INITIAL"
    public_key: bytes | None = None
    material_id: str = ""
    valid_to: float | None = None
    """Imported material: when it expires (``None``: never, or generated material)."""
    expiration_model: str | None = None
    description: str | None = None
    """Imported material: the ``KeyMaterialDescription`` given at import."""
    pending_rotation: bool = False
    """Imported as new material, not yet made current by ``RotateKeyOnDemand``."""

    def __repr__(self) -> str:
        return f"KeyVersionRecord(key_id={self.key_id!r}, version={self.version})"


@dataclass(frozen=True, slots=True)
class AliasRecord(JsonRecord):
    """An alias: a friendly name pointing at one key of the same tenant and region."""

    alias_name: str
    key_id: str
    region: str
    account_id: str
    creation_date: float
    last_updated_date: float

    @property
    def arn(self) -> str:
        """The alias ARN."""
        return f"arn:aws:kms:{self.region}:{self.account_id}:{self.alias_name}"


@dataclass(frozen=True, slots=True)
class UserKeyRecord(JsonRecord):
    """One end user's small key, wrapped under a version of a KMS key.

    Deleting this one record makes every blob under the user key unreadable
    (crypto-shredding).
    """

    user_id: str
    key_version: int
    wrapped_material: bytes
    created_at: float

    def __repr__(self) -> str:
        return f"UserKeyRecord(user_id={self.user_id!r})"


def version_name(key_id: str, version: int) -> str:
    """Store name of a key version row (zero-padded, so scans return versions in order)."""
    return f"{key_id}/{version:010d}"


def _version_owner(key: KeyRecord) -> str:
    """The name ``key``'s version rows are named under (see :func:`key_version_prefix`)."""
    if key.multi_region and key.origin == EXTERNAL:
        return key.row_name
    return key.key_id


def key_version_prefix(key: KeyRecord) -> str:
    """The prefix of ``key``'s ``keyver`` row names (each version's name is this + version).

    The key id for most keys; the key row name (one per region) for a multi-Region key of
    origin ``EXTERNAL``, whose related keys each hold their own imported material.
    """
    return _version_owner(key) + "/"


def key_version_name(key: KeyRecord, version: int) -> str:
    """Store name of one version row of ``key`` (see :func:`key_version_prefix`)."""
    return version_name(_version_owner(key), version)
