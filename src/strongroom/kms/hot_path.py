"""One direct path for each hot operation (Encrypt, Decrypt, GenerateDataKey), from caches.

:class:`HotPath` serves the common case of the three operations the servers answer most:
an enabled symmetric key of the caller's tenant and region, named by key id, key ARN or
alias, whose record, alias and material are cached, allowed by the key policy alone. It
takes typed values (no request dict, no message records), runs resolve, authorise, state
check and seal/open in one frame each, queues the same audit event as
:meth:`~strongroom.kms.kernel.Kernel.record` and returns the response fields.

It only ever answers with success. Anything else (a cache miss or expired record, an
alias not cached, a key in another state, region or origin, an authoriser that needs the
store, a grant token, a user-key blob, a rotated-in version, any error at all) returns
``None`` *before* any effect, and the caller takes the general path
(:meth:`KeyService.call <strongroom.kms.service.KeyService.call>`), which then answers or
raises exactly as it always does (and records the failure). The collaborators are the
general path's own: the same record and material caches, the kernel's authoriser, the
blob format; the only thing left out is the closure and the frames around them.
"""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.crypto.blob import BlobKind, InvalidBlob
from strongroom.errors import StrongroomError
from strongroom.kms.cache import CacheOnlyTx, NeedsStore
from strongroom.kms.caller import Caller
from strongroom.kms.imported_materials import EXTERNAL
from strongroom.kms.kernel import Kernel
from strongroom.kms.key_usage import TRACKED_OPERATIONS
from strongroom.kms.keyspec import ENCRYPT_DECRYPT, SYMMETRIC_DEFAULT
from strongroom.kms.ops.ciphertexts import PLAIN_KEY_IDS
from strongroom.kms.records import MRK_PREFIX, KeyRecord
from strongroom.kms.states import ENABLED
from strongroom.ports import StoreTx

_KEY_BLOB = BlobKind.KEY  # read once: an Enum member read through its class is slow (3.11)

HOT_OPERATIONS = ("Encrypt", "Decrypt", "GenerateDataKey")
"""The operations :class:`HotPath` serves (each also a tracked key use)."""
if not set(HOT_OPERATIONS) <= TRACKED_OPERATIONS:  # pragma: no cover - a table edit
    raise ImportError("the hot operations must be tracked key uses (see Kernel.record)")

Context = Mapping[str, str] | None
DecryptResult = tuple[str, str, bytes]
"""Decrypt: key ARN, ``KeyMaterialId``, plaintext."""
EncryptResult = tuple[bytes, str]
"""Encrypt: ciphertext blob, key ARN."""
DataKeyResult = tuple[bytes, str, str, bytes]
"""GenerateDataKey: ciphertext blob, key ARN, ``KeyMaterialId``, plaintext data key."""


class HotPath:
    """Encrypt, Decrypt and GenerateDataKey of ``kernel`` when caches can answer them.

    Each method returns the response fields, or ``None``: then nothing happened (no audit
    event, no key use) and the general path must serve the request. One clock reading
    serves a request: the caches' expiry checks and its audit event's time.
    """

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        hot = kernel._hot  # the kernel's own record caches (None if turned off)
        self._keys = hot._keys if hot.enabled else None
        self._refresh = hot.ask_refresh
        self._aliases = hot._aliases
        self._now = kernel.clock.now
        self._audit = kernel.audit
        self._authorizer = kernel.authorizer
        # the material caches' message keys and KeyMaterialIds, read here (a lookup each:
        # never the store, never an unwrap)
        self._message_keys = kernel.materials._message_keys
        self._material_ids = kernel.materials._material_ids
        self._headers = kernel.blob_headers
        self._tx: StoreTx = CacheOnlyTx()

    def __repr__(self) -> str:
        return "HotPath()"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("the key service holds key material and cannot be pickled")

    def _key(self, caller: Caller, key_spec: str, now: float) -> KeyRecord | None:
        """:meth:`Kernel.resolve_key` from the record cache, for an enabled key only."""
        region = caller.region
        ident = key_spec
        if key_spec.startswith("arn:"):
            parts = key_spec.split(":", 5)
            if (
                len(parts) != 6
                or parts[2] != "kms"
                or parts[3] != region
                or parts[4] != caller.tenant
            ):
                return None
            ident = parts[5]
            if ident.startswith("key/") and "/" not in ident[4:]:
                ident = ident[4:]
            elif not ident.startswith("alias/"):
                return None
        if ident.startswith("alias/"):
            alias_name = f"{region}/{ident}"
            account = caller.tenant
            alias = self._aliases._items.get((account, alias_name))
            if alias is None or now >= alias[0]:
                return None
            if now >= alias[2]:  # past half its life: read again off this request
                self._refresh(("alias", account, alias_name))
            ident = alias[1]
        return self._by_id(caller, ident, now)

    def _by_id(self, caller: Caller, ident: str, now: float) -> KeyRecord | None:
        """:meth:`_key` of a key id (no ARN, no alias)."""
        keys = self._keys
        if keys is None:
            return None
        region = caller.region
        # key_row_name(ident, region), as resolve_key inlines it
        name = f"{ident}@{region}" if ident.startswith(MRK_PREFIX) else ident
        found = keys._items.get((caller.tenant, name))
        if found is None or now >= found[0]:
            return None
        if now >= found[2]:
            self._refresh(("key", caller.tenant, name))
        key = found[1]
        # a disabled, pending or expired-material key, or another region's: general path
        if key.key_state != ENABLED or key.region != region or key.origin == EXTERNAL:
            return None
        return key

    def encrypt(
        self,
        caller: Caller,
        request_id: str,
        key_id: str,
        plaintext: bytes,
        context: Context,
    ) -> EncryptResult | None:
        """Encrypt under a symmetric key, as ``Encrypt`` without ``EncryptionAlgorithm``."""
        self._audit.admit()  # fail-closed audit: refused here as the general path refuses
        now = self._now()
        try:
            key = self._key(caller, key_id, now)
            if key is None or key.key_usage != ENCRYPT_DECRYPT or key.key_spec != SYMMETRIC_DEFAULT:
                return None
            version = key.current_version
            keys = self._message_keys._items.get((key.account_id, key.key_id, version))
            if keys is None or now >= keys[0]:
                return None
            self._authorizer.authorize(self._tx, caller, key, "Encrypt", context, None)
            blob = keys[1].seal_version(key.account_id, key.key_id, version, plaintext, context)
        except (StrongroomError, NeedsStore):
            return None
        arn = key.arn
        # Kernel.record of a success of a tracked operation
        self._audit.record_use(caller, request_id, "Encrypt", arn, now)
        return blob, arn

    def generate_data_key(
        self,
        caller: Caller,
        request_id: str,
        key_id: str,
        size: int,
        context: Context,
    ) -> DataKeyResult | None:
        """A data key of ``size`` bytes in plaintext and sealed, as ``GenerateDataKey``."""
        self._audit.admit()
        now = self._now()
        try:
            key = self._key(caller, key_id, now)
            if key is None or key.key_spec != SYMMETRIC_DEFAULT:
                return None
            version = key.current_version
            cache_key = (key.account_id, key.key_id, version)
            keys = self._message_keys._items.get(cache_key)
            ident = self._material_ids._items.get(cache_key)
            if keys is None or ident is None or now >= keys[0] or now >= ident[0]:
                return None
            self._authorizer.authorize(self._tx, caller, key, "GenerateDataKey", context, None)
            data_key, blob = keys[1].seal_new_key(
                key.account_id, key.key_id, version, size, context
            )
        except (StrongroomError, NeedsStore):
            return None
        arn = key.arn
        self._audit.record_use(caller, request_id, "GenerateDataKey", arn, now)
        return blob, arn, ident[1], data_key

    def decrypt(
        self,
        caller: Caller,
        request_id: str,
        blob: bytes,
        context: Context,
        key_id: str | None,
    ) -> DecryptResult | None:
        """Open a symmetric blob, as ``Decrypt`` without ``EncryptionAlgorithm`` or dry run."""
        self._audit.admit()
        now = self._now()
        try:
            header, header_end = self._headers.parse(blob)
            name = header.key_id
            if header.kind is not _KEY_BLOB or name not in PLAIN_KEY_IDS:
                return None  # a user-key blob, or an id never checked against the pattern
            # a plain key id (it matched the pattern): neither an ARN nor an alias
            key = self._by_id(caller, name, now)
            version = header.key_version
            if key is None or key.key_spec != SYMMETRIC_DEFAULT or version > key.current_version:
                return None
            if key_id is not None:
                requested = self._key(caller, key_id, now)
                if requested is None or requested.key_id != key.key_id:
                    return None
            cache_key = (key.account_id, key.key_id, version)
            keys = self._message_keys._items.get(cache_key)
            ident = self._material_ids._items.get(cache_key)
            if keys is None or ident is None or now >= keys[0] or now >= ident[0]:
                return None
            self._authorizer.authorize(self._tx, caller, key, "Decrypt", context, None)
            plaintext = keys[1].open(key.account_id, blob, header_end, context)
        except (StrongroomError, NeedsStore, InvalidBlob):
            return None
        arn = key.arn
        self._audit.record_use(caller, request_id, "Decrypt", arn, now)
        return arn, ident[1], plaintext
