"""Key material for the key service: tenant KEKs, version material, ``KeyMaterialId``.

:class:`Materials` is the kernel's collaborator that turns stored, wrapped records into
usable keys: the tenant's key-encryption key unwrapped by the
root of trust, each key version's material unwrapped by that KEK (bound to its identity),
the blob message keys derived from it, and the ``KeyMaterialId`` of a version. Each is held
in a bounded cache with a time to live, dropped per key by :meth:`forget_key`.
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.crypto.blob import MessageKeys
from strongroom.crypto.wrap import UnwrapFailed, key_identity, unwrap_key, wrap_key
from strongroom.errors import NotFoundError, RootOfTrustError
from strongroom.kms.cache import TtlCache
from strongroom.kms.material import generated_material_id, material_fingerprint_key
from strongroom.kms.records import (
    EXTERNAL,
    KeyRecord,
    KeyVersionRecord,
    TenantRecord,
    key_version_name,
)
from strongroom.ports import Clock, RootOfTrust, Store, StoreTx


class Materials:
    """Unwrapping and caching of key material, for one kernel.

    ``active_tx`` returns the transaction the calling thread runs in (the kernel's), so a
    lookup deep inside an operation does not open a nested transaction.
    """

    def __init__(
        self,
        store: Store,
        root: RootOfTrust,
        clock: Clock,
        active_tx: Callable[[], StoreTx | None],
        *,
        ttl_s: float,
        size: int,
    ) -> None:
        self.store = store
        self.root = root
        self.active_tx = active_tx
        self._now = clock.now
        self._keks: TtlCache[str, bytes] = TtlCache(ttl_s, 10_000, clock.now)
        self._material: TtlCache[tuple[str, str, int], bytes] = TtlCache(ttl_s, size, clock.now)
        # the same material, ready to derive blob message keys (dropped with it)
        self._message_keys: TtlCache[tuple[str, str, int], MessageKeys] = TtlCache(
            ttl_s, size, clock.now
        )
        # KeyMaterialId of each (tenant, key, version): never changes, so only bounded
        self._material_ids: TtlCache[tuple[str, str, int], str] = TtlCache(ttl_s, size, clock.now)

    # -- tenants and their key-encryption keys ------------------------------------------

    def tenant_kek(self, account_id: str, tx: StoreTx | None = None) -> bytes:
        """Return the unwrapped key-encryption key of a tenant (cached).

        Read through ``tx`` (or the thread's active transaction) when there is one.
        """
        kek = self._keks.get(account_id)
        if kek is not None:
            return kek
        tx = tx or self.active_tx()
        if tx is not None:
            raw = tx.get(account_id, "tenant", "self")
        else:
            raw = self.store.read(lambda t: t.get(account_id, "tenant", "self"))
        if raw is None:
            raise NotFoundError(f"Account {account_id} does not exist.")
        tenant = TenantRecord.from_bytes(raw)
        kek = self.root.unwrap(tenant.wrapped_kek, key_identity("tenant", account_id))
        self._keks.put(account_id, kek)
        return kek

    # -- key material --------------------------------------------------------------------

    def wrap_material(self, account_id: str, key_id: str, version: int, material: bytes) -> bytes:
        """Wrap one version's material under the tenant KEK, bound to its identity."""
        identity = key_identity("keyver", account_id, key_id, version)
        return wrap_key(self.tenant_kek(account_id), material, identity)

    def material(self, tx: StoreTx, key: KeyRecord, version: int) -> bytes:
        """Return the unwrapped material of ``key`` at ``version`` (cached, bounded)."""
        cache_key = (key.account_id, key.key_id, version)
        cached = self._material.get(cache_key)
        if cached is not None:
            return cached
        raw = tx.get(key.account_id, "keyver", key_version_name(key, version))
        if raw is None:
            raise NotFoundError(f"Key version {version} of {key.arn} does not exist.")
        record = KeyVersionRecord.from_bytes(raw)
        identity = key_identity("keyver", key.account_id, key.key_id, version)
        try:
            material = unwrap_key(
                self.tenant_kek(key.account_id, tx), record.wrapped_material, identity
            )
        except UnwrapFailed as exc:
            raise RootOfTrustError("stored key material does not unwrap") from exc
        self._material.put(cache_key, material)
        return material

    def message_keys(self, tx: StoreTx, key: KeyRecord, version: int) -> MessageKeys:
        """The :class:`MessageKeys` of ``key`` at ``version`` (cached as the material is)."""
        cache_key = (key.account_id, key.key_id, version)
        found = self._message_keys.get(cache_key)
        if found is None:
            found = MessageKeys(self.material(tx, key, version))
            self._message_keys.put(cache_key, found)
        return found

    def material_fingerprint_key(self, account_id: str) -> bytes:
        """The tenant's key for ``KeyMaterialId`` values (derived from its KEK, one-way)."""
        return material_fingerprint_key(self.tenant_kek(account_id))

    def material_id_of(self, tx: StoreTx | None, key: KeyRecord, version: int) -> str:
        """The ``KeyMaterialId`` of one version of a symmetric key: 64 hex digits.

        Imported material keeps the fingerprint taken when it was imported (stored with the
        version); generated material is named by a keyed digest of (key id, version), one
        material per version for life. Neither reveals anything about the material.
        """
        cache_key = (key.account_id, key.key_id, version)
        found = self._material_ids.get(cache_key)
        if found is None:
            if key.origin == EXTERNAL:
                if tx is not None:
                    found = self.version_record(tx, key, version).material_id
                else:
                    found = self.store.read(
                        lambda t: self.version_record(t, key, version)
                    ).material_id
            else:
                found = generated_material_id(
                    self.material_fingerprint_key(key.account_id), key.key_id, version
                )
            self._material_ids.put(cache_key, found)
        return found

    def version_record(self, tx: StoreTx, key: KeyRecord, version: int) -> KeyVersionRecord:
        """Return the stored record of one key version."""
        raw = tx.get(key.account_id, "keyver", key_version_name(key, version))
        if raw is None:
            raise NotFoundError(f"Key version {version} of {key.arn} does not exist.")
        return KeyVersionRecord.from_bytes(raw)

    def forget_key(self, account_id: str, key_id: str) -> None:
        """Drop every cached material of one key (disable, deletion, rotation)."""
        self._material.drop_where(lambda k: k[0] == account_id and k[1] == key_id)
        self._message_keys.drop_where(lambda k: k[0] == account_id and k[1] == key_id)
        self._material_ids.drop_where(lambda k: k[0] == account_id and k[1] == key_id)
