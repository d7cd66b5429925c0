"""Managed objects: their record in the key store and the wrapping of their material.

One record per object at ``(tenant, "kmip.object", uid)``. The record is JSON (version 1):
type, state, attributes (TTLV of each value), key format and the material sealed as an
envelope: a data key from the key service under the tenant's KMS key (encryption context
names the front-end, the tenant and the object) and the material wrapped by that data key
with :func:`strongroom.crypto.wrap.wrap_key`, bound to ``("kmip", tenant, uid)``. So the
material is under the tenant's key hierarchy and the root of trust; disabling the tenant's
KMS key stops every use; destroying an object deletes both halves (crypto-shredding).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from strongroom.crypto.wrap import UnwrapFailed, key_identity, unwrap_key, wrap_key
from strongroom.data.keys import DataKeyProvider
from strongroom.errors import StoreError
from strongroom.kmip.attributes import Attributes, as_value
from strongroom.kmip.errors import KmipError
from strongroom.kmip.tags import ObjectType, ResultReason, State
from strongroom.kmip.ttlv import Item, TtlvError, decode, encode
from strongroom.ports import Store, StoreTx

KIND = "kmip.object"
RECORD_VERSION = 1
MAX_MATERIAL_BYTES = 8192
"""Largest key or secret accepted by Register."""
SCAN_PAGE = 500


@dataclass(slots=True)
class ManagedObject:
    """One KMIP managed object of a tenant (material only in sealed form)."""

    uid: str
    object_type: ObjectType
    state: State
    attrs: Attributes
    key_format: int
    secret_data_type: int | None = None
    sealed_key: bytes | None = field(default=None, repr=False)
    """The data key, wrapped by the tenant's KMS key (``None`` once destroyed)."""
    sealed_material: bytes | None = field(default=None, repr=False)
    kms_key_arn: str = ""

    def attr(self, name: str) -> Item | None:
        """The first value of attribute ``name``, or ``None``."""
        values = self.attrs.get(name)
        return values[0] if values else None

    def int_attr(self, name: str, default: int = 0) -> int:
        """An integer-valued attribute (``default`` when absent)."""
        found = self.attr(name)
        return found.value if found is not None and isinstance(found.value, int) else default

    def set_attr(self, name: str, value: Item) -> None:
        """Replace every value of ``name`` with ``value``."""
        self.attrs[name] = [as_value(value)]

    @property
    def extractable(self) -> bool:
        """Whether Get may return the material (attribute ``Extractable``)."""
        found = self.attr("Extractable")
        return bool(found is not None and found.value is True)

    # -- serialisation --------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The stored record."""

        def b64(raw: bytes | None) -> str | None:
            return None if raw is None else base64.b64encode(raw).decode("ascii")

        return json.dumps(
            {
                "v": RECORD_VERSION,
                "uid": self.uid,
                "type": int(self.object_type),
                "state": int(self.state),
                "format": self.key_format,
                "secretType": self.secret_data_type,
                "attrs": {n: [encode(v).hex() for v in vs] for n, vs in self.attrs.items()},
                "sealedKey": b64(self.sealed_key),
                "sealed": b64(self.sealed_material),
                "kmsKey": self.kms_key_arn,
            },
            sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ManagedObject:
        """Parse a stored record; raise ``StoreError`` if it is damaged."""
        try:
            doc = json.loads(raw)
            if doc["v"] != RECORD_VERSION:
                raise StoreError("a KMIP object record has an unknown version")

            def unb64(text: str | None) -> bytes | None:
                return None if text is None else base64.b64decode(text)

            return cls(
                uid=doc["uid"],
                object_type=ObjectType(doc["type"]),
                state=State(doc["state"]),
                attrs={n: [decode(bytes.fromhex(v)) for v in vs] for n, vs in doc["attrs"].items()},
                key_format=doc["format"],
                secret_data_type=doc["secretType"],
                sealed_key=unb64(doc["sealedKey"]),
                sealed_material=unb64(doc["sealed"]),
                kms_key_arn=doc["kmsKey"],
            )
        except (ValueError, KeyError, TypeError, TtlvError) as exc:
            raise StoreError("a KMIP object record is damaged") from exc


# -- the store ------------------------------------------------------------------------------


def load(tx: StoreTx, tenant: str, uid: str, *, for_update: bool = False) -> ManagedObject:
    """The object ``uid`` of ``tenant``; Item Not Found for anything else (other tenants too)."""
    raw = (tx.get_for_update if for_update else tx.get)(tenant, KIND, uid)
    if raw is None:
        raise KmipError(ResultReason.ITEM_NOT_FOUND, f"object {uid[:64]!r} not found")
    return ManagedObject.from_bytes(raw)


class ObjectCache:
    """Object records this process read lately, for the operations that only read them.

    Parsing a record (JSON, then the TTLV of each attribute) costs more than the AES of an
    ``Encrypt``, so ``Get``, ``Encrypt``, ``Decrypt``, ``MAC`` and attribute reads keep the
    parsed object for ``ttl_s``. Every write of this process empties the cache (and a read
    that started before a write cannot put its older copy back), so this process never
    serves an object older than its own last write; another process's ``Revoke`` or
    ``Destroy`` over the same store is seen within ``ttl_s``. Holds sealed material only.
    Callers must not change a cached object (writes load their own copy for update).
    """

    def __init__(
        self, ttl_s: float = 1.0, max_entries: int = 10_000, now: Callable[[], float] | None = None
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._now = now or time.monotonic
        self._items: OrderedDict[tuple[str, str], tuple[float, ManagedObject]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0

    def __repr__(self) -> str:
        return f"ObjectCache(entries={len(self._items)})"

    def get(self, tenant: str, uid: str) -> ManagedObject | None:
        """The live cached object, or ``None``."""
        found = self._items.get((tenant, uid))
        if found is None or found[0] <= self._now():
            return None
        return found[1]

    def put(self, tenant: str, uid: str, obj: ManagedObject, generation: int) -> None:
        """Keep ``obj`` unless a write happened since ``generation`` was read."""
        with self._lock:
            if generation != self.generation:
                return
            self._items[(tenant, uid)] = (self._now() + self._ttl, obj)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def invalidate(self) -> None:
        """Forget everything (after a write)."""
        with self._lock:
            self.generation += 1
            self._items.clear()


def read_object(store: Store, cache: ObjectCache | None, tenant: str, uid: str) -> ManagedObject:
    """The object ``uid`` of ``tenant`` for reading only, from ``cache`` when it is there."""
    if cache is None:
        return store.read(lambda tx: load(tx, tenant, uid))
    found = cache.get(tenant, uid)
    if found is None:
        generation = cache.generation
        found = store.read(lambda tx: load(tx, tenant, uid))
        cache.put(tenant, uid, found, generation)
    return found


def save(tx: StoreTx, tenant: str, obj: ManagedObject) -> None:
    """Create or replace the record of ``obj``."""
    tx.put(tenant, KIND, obj.uid, obj.to_bytes())


def scan(tx: StoreTx, tenant: str) -> Iterator[ManagedObject]:
    """Every object of ``tenant``, in uid order, page by page."""
    after: str | None = None
    while True:
        page = tx.scan(tenant, KIND, after=after, limit=SCAN_PAGE)
        for _, raw in page:
            yield ManagedObject.from_bytes(raw)
        if len(page) < SCAN_PAGE:
            return
        after = page[-1][0]


# -- sealing --------------------------------------------------------------------------------


def _context(tenant: str, uid: str) -> dict[str, str]:
    return {"strongroom:front-end": "kmip", "strongroom:tenant": tenant, "kmip:object": uid}


def seal(
    keys: DataKeyProvider, kms_key: str, tenant: str, obj: ManagedObject, material: bytes
) -> None:
    """Seal ``material`` into ``obj`` under a fresh data key of ``kms_key``."""
    if len(material) > MAX_MATERIAL_BYTES:
        raise KmipError(ResultReason.INVALID_FIELD, "key material is too long")
    data_key = keys.generate_data_key(kms_key, _context(tenant, obj.uid))
    obj.sealed_key = data_key.wrapped
    obj.sealed_material = wrap_key(
        data_key.plaintext, material, key_identity("kmip", tenant, obj.uid)
    )
    obj.kms_key_arn = data_key.key_arn


def unseal(keys: DataKeyProvider, tenant: str, obj: ManagedObject) -> bytes:
    """The material of ``obj`` (the key service checks the tenant's KMS key may be used)."""
    if obj.sealed_key is None or obj.sealed_material is None:
        raise KmipError(ResultReason.ITEM_NOT_FOUND, "the object has no key material")
    data_key = keys.decrypt_data_key(obj.sealed_key, _context(tenant, obj.uid), obj.kms_key_arn)
    try:
        return unwrap_key(data_key, obj.sealed_material, key_identity("kmip", tenant, obj.uid))
    except UnwrapFailed as exc:
        raise StoreError("a KMIP object's material does not unwrap") from exc
