"""A store whose every record is authenticated: :class:`SealedStore` over any :class:`Store`.

One layer for every kind of record (policies live in key records, principals, grants,
aliases, tenants, CA and mesh rows...): values are sealed on the way in and checked on
the way out (:mod:`strongroom.ports.row_mac`), so a row edited in the database is refused
with :class:`~strongroom.errors.TamperedRecordError` wherever it is read, and no part of
Strongroom can obey it by forgetting a check. Deleting rows can only deny (a missing
record grants nothing); a count or a listing may shrink.

The master MAC key is one record of its own, ``(_global, storemac, v1)``, wrapped by the
root of trust; it is hidden from everything above this layer. :func:`seal_store` unwraps
it at start, or creates it on a store that has none: a new store, or a store of an
earlier Strongroom, whose records are then sealed as they are, in one transaction (the
migration trusts the rows as they are at that moment).
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Callable, Sequence
from typing import TypeVar

from strongroom.errors import StoreError, TamperedRecordError
from strongroom.ports.audit_chain import UNKEYED, AuditChain
from strongroom.ports.root import RootOfTrust
from strongroom.ports.row_mac import MASTER_KEY_BYTES, StoreSecrets, tampered
from strongroom.ports.store import GLOBAL_TENANT, AuditRecord, Store, StoreTx

T = TypeVar("T")

KEY_KIND = "storemac"
"""The reserved kind of the wrapped master MAC key (in :data:`GLOBAL_TENANT`)."""
KEY_NAME = "v1"
WRAP_IDENTITY = b"strongroom/store-mac/v1"
_PAGE = 1000

Upgrade = Callable[[str, str, str, bytes], bytes]
"""Rewrites a record of an earlier format while it is sealed the first time (or returns it)."""


def _reserved(tenant: str, kind: str) -> bool:
    return kind == KEY_KIND and tenant == GLOBAL_TENANT


def _refuse_reserved(tenant: str, kind: str) -> None:
    if _reserved(tenant, kind):
        raise StoreError("the store MAC key record is not accessible")


class SealedTx:
    """A :class:`~strongroom.ports.StoreTx` that seals what it writes and checks what it reads."""

    __slots__ = ("_s", "_tx")

    def __init__(self, tx: StoreTx, secrets: StoreSecrets) -> None:
        self._tx = tx
        self._s = secrets

    @property
    def secrets(self) -> StoreSecrets:
        """The store's derived keys (grant tokens use one)."""
        return self._s

    def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        """Return one verified record value, or ``None``."""
        _refuse_reserved(tenant, kind)
        raw = self._tx.get(tenant, kind, name)
        return None if raw is None else self._s.open((tenant, kind, name), raw)

    def get_for_update(self, tenant: str, kind: str, name: str) -> bytes | None:
        """Like :meth:`get`, locking the record."""
        _refuse_reserved(tenant, kind)
        raw = self._tx.get_for_update(tenant, kind, name)
        return None if raw is None else self._s.open((tenant, kind, name), raw)

    def insert(self, tenant: str, kind: str, name: str, value: bytes) -> bool:
        """Create a sealed record unless it exists."""
        _refuse_reserved(tenant, kind)
        return self._tx.insert(tenant, kind, name, self._s.seal((tenant, kind, name), value))

    def insert_many(self, tenant: str, kind: str, items: Sequence[tuple[str, bytes]]) -> int:
        """Create many sealed records, skipping names that exist."""
        _refuse_reserved(tenant, kind)
        seal = self._s.seal
        return self._tx.insert_many(
            tenant, kind, [(n, seal((tenant, kind, n), v)) for n, v in items]
        )

    def get_many(self, tenant: str, kind: str, names: Sequence[str]) -> dict[str, bytes]:
        """The verified values of those of ``names`` that exist."""
        _refuse_reserved(tenant, kind)
        found = self._tx.get_many(tenant, kind, names)
        return {n: self._s.open((tenant, kind, n), raw) for n, raw in found.items()}

    def put(self, tenant: str, kind: str, name: str, value: bytes) -> None:
        """Create or replace a sealed record."""
        _refuse_reserved(tenant, kind)
        self._tx.put(tenant, kind, name, self._s.seal((tenant, kind, name), value))

    def put_many(self, tenant: str, kind: str, items: Sequence[tuple[str, bytes]]) -> None:
        """Create or replace many sealed records of one kind."""
        _refuse_reserved(tenant, kind)
        seal = self._s.seal
        self._tx.put_many(tenant, kind, [(n, seal((tenant, kind, n), v)) for n, v in items])

    def delete(self, tenant: str, kind: str, name: str) -> bool:
        """Delete a record (deleting can only deny)."""
        _refuse_reserved(tenant, kind)
        return self._tx.delete(tenant, kind, name)

    def delete_prefix(self, tenant: str, kind: str, prefix: str) -> int:
        """Delete every record whose name starts with ``prefix``."""
        _refuse_reserved(tenant, kind)
        return self._tx.delete_prefix(tenant, kind, prefix)

    def scan(
        self,
        tenant: str,
        kind: str,
        prefix: str = "",
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, bytes]]:
        """Verified ``(name, value)`` pairs by ascending name (see :meth:`StoreTx.scan`)."""
        _refuse_reserved(tenant, kind)
        rows = self._tx.scan(tenant, kind, prefix, after, limit)
        return [(n, self._s.open((tenant, kind, n), raw)) for n, raw in rows]

    def count(self, tenant: str, kind: str, prefix: str = "") -> int:
        """How many records (a count is not authenticated: rows added by hand only deny)."""
        if _reserved(tenant, kind):
            return 0
        return self._tx.count(tenant, kind, prefix)

    def tenants(self) -> list[str]:
        """Every tenant with a record, the MAC key's own row not counted."""
        found = self._tx.tenants()
        if GLOBAL_TENANT in found and not self.kinds(GLOBAL_TENANT):
            found.remove(GLOBAL_TENANT)
        return found

    def kinds(self, tenant: str) -> list[str]:
        """Every kind with a record of ``tenant`` (not the reserved one)."""
        return [k for k in self._tx.kinds(tenant) if not _reserved(tenant, k)]

    def append_audit(
        self, bodies: Sequence[bytes], chain: AuditChain = UNKEYED
    ) -> list[AuditRecord]:
        """Append audit events (the audit chain has its own integrity: ``chain`` keys it)."""
        return self._tx.append_audit(bodies, chain)

    def append_audit_head(
        self, bodies: Sequence[bytes], chain: AuditChain = UNKEYED
    ) -> AuditRecord | None:
        """Append audit events; return the newest."""
        return self._tx.append_audit_head(bodies, chain)

    def read_audit(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Read audit events."""
        return self._tx.read_audit(after_seq, limit)


class SealedStore:
    """A :class:`~strongroom.ports.Store` whose units see :class:`SealedTx` transactions.

    Other attributes (``path``, ``schema_version``...) are those of the wrapped store.
    """

    def __init__(self, inner: Store, secrets: StoreSecrets) -> None:
        self.inner = inner
        self.secrets = secrets

    def __repr__(self) -> str:
        return f"SealedStore({self.inner!r}, key_id={self.secrets.key_id})"

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def read(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in a read transaction of the wrapped store, over sealed records."""
        secrets = self.secrets
        return self.inner.read(lambda tx: fn(SealedTx(tx, secrets)))

    def write(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in a write transaction of the wrapped store, over sealed records."""
        secrets = self.secrets
        return self.inner.write(lambda tx: fn(SealedTx(tx, secrets)))

    def close(self) -> None:
        """Close the wrapped store."""
        self.inner.close()


def secrets_of(tx: StoreTx) -> StoreSecrets:
    """The store secrets of a sealed transaction; a plain one has none (and gets nothing)."""
    if isinstance(tx, SealedTx):
        return tx.secrets
    raise StoreError("this operation needs a sealed key store")


def secrets_of_store(store: Store) -> StoreSecrets | None:
    """The secrets of ``store`` if it is sealed (perhaps under other wrappers), else ``None``."""
    seen: object = store
    for _ in range(8):  # wrappers name what they wrap ``inner``
        if isinstance(seen, SealedStore):
            return seen.secrets
        seen = getattr(seen, "inner", None)
        if seen is None:
            break
    return None


def seal_store(
    store: Store,
    root: RootOfTrust,
    *,
    upgrade: Upgrade | None = None,
    expected_key_id: str | None = None,
) -> Store:
    """Wrap ``store`` in a :class:`SealedStore`, creating its MAC key if it has none.

    A store without a MAC key is sealed now: every record as it is (through ``upgrade``
    first), in one write transaction, with a new key wrapped by ``root``. With
    ``expected_key_id`` (what a data directory remembers), a store whose key is missing or
    another is refused: deleting the key row must not make Strongroom trust rows anew.
    """
    if secrets_of_store(store) is not None:
        return store
    wrapped = store.read(lambda tx: tx.get(GLOBAL_TENANT, KEY_KIND, KEY_NAME))
    if wrapped is None:
        if expected_key_id is not None:
            error = TamperedRecordError(
                "The key store has lost its metadata MAC key, which this data directory "
                f"says it had (key {expected_key_id}): its records cannot be trusted."
            )
            error.record = f"{GLOBAL_TENANT}/{KEY_KIND}/{KEY_NAME}"
            raise error
        wrapped = store.write(lambda tx: _create_key(tx, root, upgrade))
    secrets = StoreSecrets(root.unwrap(wrapped, WRAP_IDENTITY))
    if expected_key_id is not None and secrets.key_id != expected_key_id:
        raise tampered((GLOBAL_TENANT, KEY_KIND, KEY_NAME))
    return SealedStore(store, secrets)


def _create_key(tx: StoreTx, root: RootOfTrust, upgrade: Upgrade | None) -> bytes:
    """Make the MAC key and seal every existing record with it (unless another process did)."""
    existing = tx.get_for_update(GLOBAL_TENANT, KEY_KIND, KEY_NAME)
    if existing is not None:
        return existing
    master = _random.token_bytes(MASTER_KEY_BYTES)
    secrets = StoreSecrets(master)
    for tenant in tx.tenants():
        for kind in tx.kinds(tenant):
            after: str | None = None
            while True:
                page = tx.scan(tenant, kind, after=after, limit=_PAGE)
                if not page:
                    break
                items = []
                for name, value in page:
                    if upgrade is not None:
                        value = upgrade(tenant, kind, name, value)
                    items.append((name, secrets.seal((tenant, kind, name), value)))
                tx.put_many(tenant, kind, items)
                after = page[-1][0]
    wrapped = root.wrap(master, WRAP_IDENTITY)
    tx.insert(GLOBAL_TENANT, KEY_KIND, KEY_NAME, wrapped)
    return wrapped
