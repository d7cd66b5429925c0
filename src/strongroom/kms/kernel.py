"""The kernel of the key service: the collaborators every operation is given.

:class:`Kernel` holds the injected store, root of trust and clock, the
:class:`~strongroom.kms.authz.Authorizer` (required: there is no default that allows),
key material (:class:`~strongroom.kms.materials.Materials`), key records and their cache,
the audit buffer, and the steps each operation is made of: resolve a KeyId to a key of the
caller's tenant, check its state, authorise, audit. Operation handlers are plain functions
in :mod:`strongroom.kms.ops` that take a kernel; :class:`strongroom.kms.service.KeyService`
looks them up in one table.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from strongroom.crypto.blob import HeaderCache
from strongroom.errors import (
    AccessDeniedError,
    DryRunOperationError,
    NotFoundError,
    StrongroomError,
)
from strongroom.kms.audit_log import AuditLog
from strongroom.kms.authz.authorizer import Authorizer
from strongroom.kms.authz.grants import MAX_GRANTS_PER_KEY
from strongroom.kms.cache import HotRecords, TtlCache, WriteWatchingStore
from strongroom.kms.caller import Caller
from strongroom.kms.imported_materials import EXTERNAL, current_view
from strongroom.kms.key_usage import TRACKED_OPERATIONS
from strongroom.kms.materials import Materials
from strongroom.kms.messages.shared import KeyMetadata
from strongroom.kms.metadata import key_metadata
from strongroom.kms.multi_region import related_rows
from strongroom.kms.records import MRK_PREFIX, KeyRecord
from strongroom.kms.states import PENDING_DELETION, check_state
from strongroom.kms.upgrades import upgrade_record
from strongroom.kms.userkeys.messages import SHAPES as USER_KEY_SHAPES
from strongroom.kms.wire_codec import MessageCodec
from strongroom.kms.wire_model import WireModel
from strongroom.ports import Clock, RootOfTrust, Store, StoreTx
from strongroom.ports.sealed_store import seal_store

T = TypeVar("T")

DAY = 86400.0


@dataclass(slots=True)
class OpContext:
    """One request in flight: who calls, which operation, which request id."""

    caller: Caller
    operation: str
    request_id: str
    dry_run: bool = False
    key_arn: str | None = None
    source_key_arn: str | None = None
    """ReEncrypt: the key the ciphertext came from (``key_arn`` is the destination)."""


class Kernel:
    """The collaborators and steps shared by every operation of the key service."""

    def __init__(
        self,
        store: Store,
        root: RootOfTrust,
        clock: Clock,
        *,
        material_ttl_s: float = 300.0,
        material_cache_size: int = 10_000,
        authorizer: Authorizer,
        key_record_ttl_s: float = 1.0,
        model: WireModel | None = None,
        max_grants_per_key: int = MAX_GRANTS_PER_KEY,
        user_key_cache_size: int = 50_000,
        user_keys_model: WireModel | None = None,
        audit_log: AuditLog | None = None,
    ) -> None:
        # Every record is authenticated (ports.sealed_store): a store opened elsewhere is
        # sealed already; a bare one (tests, tools) is sealed here, migrated if it is old.
        store = seal_store(store, root, upgrade=upgrade_record)
        self.store: Store = store
        self.authorizer = authorizer
        self.max_grants_per_key = max_grants_per_key
        self.root = root
        self.clock = clock
        self.model = model or WireModel.load()
        self.material_ttl_s = material_ttl_s
        self.audit = audit_log if audit_log is not None else AuditLog(store, clock)
        self.materials = Materials(
            store, root, clock, self.active_tx, ttl_s=material_ttl_s, size=material_cache_size
        )
        # (account, key id, user id) -> (row bytes, version, unwrapped user key)
        self.user_keys: TtlCache[tuple[str, str, str], tuple[bytes, int, bytes]] = TtlCache(
            material_ttl_s, user_key_cache_size, clock.now
        )
        self.user_keys_model = user_keys_model or model or WireModel.load()
        self.user_keys_codec = MessageCodec(self.user_keys_model, USER_KEY_SHAPES)
        self.blob_headers = HeaderCache()  # parsed ciphertext blob headers
        self._lock = threading.Lock()
        self._active = threading.local()
        # uuid4 costs more than a whole Decrypt's AES: ids are a per-process random
        # prefix (same shape as a UUID's first four groups) and a counter.
        prefix = secrets.token_hex(10)
        self._request_prefix = f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:]}"
        self._request_counter = itertools.count(1)
        # key and alias records for read_cached: a write of this process ends them at once,
        # a change by another process is seen within key_record_ttl_s (0: no such cache)
        self._hot = HotRecords(key_record_ttl_s, clock.now, self._active)
        if self._hot.enabled:
            self.store = WriteWatchingStore(store, self._hot.invalidate, self._hot.close)
            self.materials.store = self.store
            self._hot.refresh_with(self.read)  # records in use are read again off requests

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root.description})"

    def new_request_id(self) -> str:
        """Return a request id unique across processes: a random prefix and a counter."""
        return f"{self._request_prefix}-{next(self._request_counter):012x}"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("the key service holds key material and cannot be pickled")

    def forget_key(self, account_id: str, key_id: str) -> None:
        """Drop every cached material and user key of one key (disable, deletion, rotation)."""
        self.materials.forget_key(account_id, key_id)
        self.user_keys.drop_where(lambda k: k[0] == account_id and k[1] == key_id)

    # -- transactions -------------------------------------------------------------------

    def _tracked(self, fn: Callable[[StoreTx], T]) -> Callable[[StoreTx], T]:
        """Wrap ``fn`` so that :meth:`active_tx` returns its transaction while it runs."""

        def unit(tx: StoreTx) -> T:
            outer = getattr(self._active, "tx", None)
            self._active.tx = tx
            try:
                return fn(tx)
            finally:
                self._active.tx = outer

        return unit

    def active_tx(self) -> StoreTx | None:
        """The transaction this thread runs in through :meth:`read`/:meth:`write`, if any.

        Lookups made deep inside an operation (a tenant KEK) use it instead of opening a
        nested transaction, which SQLite refuses on the same connection.
        """
        tx: StoreTx | None = getattr(self._active, "tx", None)
        return tx

    def read(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in a read transaction."""
        return self.store.read(self._tracked(fn))

    def read_cached(self, fn: Callable[[StoreTx], T]) -> T:
        """Run a read unit that may use recently read key and alias records.

        The unit runs first with no store at all (caches only); if it needs the store it
        runs again in a read transaction, so ``fn`` must have no effect beyond its result.
        Write units never use cached records.
        """
        return self._hot.run(fn, self.read)

    def write(self, ctx: OpContext | None, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in a write transaction; in a dry run, roll it back at the end.

        ``ctx`` is ``None`` for work that is not a request (maintenance).
        """

        def unit(tx: StoreTx) -> T:
            result = fn(tx)
            if ctx is not None and ctx.dry_run:
                raise DryRunOperationError(
                    "The request would have succeeded, but the DryRun option is set."
                )
            return result

        return self.store.write(self._tracked(unit))

    # -- resolving KeyId -----------------------------------------------------------------

    def resolve_key(self, tx: StoreTx, ctx: OpContext, key_spec: str) -> KeyRecord:
        """Find the key a KeyId names: key id, key ARN, alias name or alias ARN.

        Only keys of the caller's tenant and region are visible. An ARN of another account
        is refused as AWS refuses a cross-account call without a policy that allows it.
        A key whose deletion date has passed is reported as not found; a key whose
        imported material has expired is seen as pending import.
        """
        caller = ctx.caller
        region = caller.region
        account = caller.tenant
        ident = key_spec
        if key_spec.startswith("arn:"):
            parts = key_spec.split(":", 5)
            if len(parts) != 6 or parts[2] != "kms" or not parts[5]:
                raise NotFoundError(f"Invalid arn {key_spec}")
            region, account, ident = parts[3], parts[4], parts[5]
            if region != caller.region:
                # Keys are regional: another region's ARN names nothing here.
                raise NotFoundError(f"Invalid arn {key_spec}")
            if account != caller.tenant:
                raise AccessDeniedError(
                    f"User: {caller.principal_arn} is not authorized to perform: "
                    f"kms:{ctx.operation} on resource: {key_spec} because no resource-based "
                    "policy allows the kms:" + ctx.operation + " action"
                )
            if ident.startswith("key/") and "/" not in ident[4:]:
                ident = ident[4:]  # a key ARN names a key id, never an alias
            elif not ident.startswith("alias/"):
                raise NotFoundError(f"Invalid arn {key_spec}")
        if ident.startswith("alias/"):
            target = self._hot.alias_target(tx, account, f"{region}/{ident}")
            if target is None:
                raise NotFoundError(f"Alias arn:aws:kms:{region}:{account}:{ident} is not found.")
            ident = target
        # key_row_name(ident, region), inlined: this is on every operation's path
        name = f"{ident}@{region}" if ident.startswith(MRK_PREFIX) else ident
        key = self._hot.key(tx, account, name)
        if (
            key is None
            or key.region != region
            # is_past_deletion, inlined: this is on every operation's path
            or (
                key.key_state == PENDING_DELETION
                and key.deletion_date is not None
                and self.clock.now() >= key.deletion_date
            )
        ):
            raise NotFoundError(f"Key 'arn:aws:kms:{region}:{account}:key/{ident}' does not exist")
        ctx.key_arn = key.arn
        if key.origin == EXTERNAL:  # expired imported material counts as deleted
            return current_view(key, self.clock.now())
        return key

    def resolve_fresh(self, tx: StoreTx, ctx: OpContext, key_spec: str) -> KeyRecord:
        """:meth:`resolve_key` from the store: a cached record may predate a rotation."""
        with self._hot.bypass():
            return self.resolve_key(tx, ctx, key_spec)

    def is_past_deletion(self, key: KeyRecord) -> bool:
        """Whether ``key`` is pending deletion and its waiting period has ended."""
        return (
            key.key_state == PENDING_DELETION
            and key.deletion_date is not None
            and self.clock.now() >= key.deletion_date
        )

    def usable_key(
        self,
        tx: StoreTx,
        ctx: OpContext,
        key_spec: str,
        group: str,
        action: str,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] | None = None,
    ) -> KeyRecord:
        """Resolve, check the key state for ``group``, and authorise ``action``."""
        key = self.resolve_key(tx, ctx, key_spec)
        self.authorizer.authorize(tx, ctx.caller, key, action, encryption_context, grant_tokens)
        check_state(key.key_state, group, key.arn)
        return key

    # -- authorisation -------------------------------------------------------------------

    def authorize(
        self,
        tx: StoreTx,
        ctx: OpContext,
        key: KeyRecord,
        action: str,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] | None = None,
    ) -> None:
        """Raise ``AccessDeniedError`` unless the caller may do ``action`` on ``key``.

        The kernel's :class:`~strongroom.kms.authz.Authorizer` decides (tenancy, key
        policies, grants); there is no path to a key around it.
        """
        self.authorizer.authorize(tx, ctx.caller, key, action, encryption_context, grant_tokens)

    # -- audit ---------------------------------------------------------------------------

    def record(self, ctx: OpContext, result: str, detail: dict[str, Any] | None = None) -> None:
        """Queue one audit event (who, what, which key, result, request id).

        A successful cryptographic operation is also noted as its key's last use.
        """
        now = None
        if result == "Success" and ctx.key_arn is not None and ctx.operation in TRACKED_OPERATIONS:
            now = self.clock.now()  # one reading for the use and its audit event
            self.audit.key_uses.note(ctx.key_arn, ctx.operation, now, ctx.request_id)
            if ctx.source_key_arn is not None:
                self.audit.key_uses.note(ctx.source_key_arn, ctx.operation, now, ctx.request_id)
        if not detail:
            self.audit.record_call(
                ctx.caller, ctx.request_id, ctx.operation, ctx.key_arn, result, now
            )
            return
        self.audit.record(
            {
                "requestId": ctx.request_id,
                "operation": ctx.operation,
                "account": ctx.caller.tenant,
                "principal": ctx.caller.principal_arn,
                "accessKeyId": ctx.caller.access_key_id,
                "region": ctx.caller.region,
                "keyArn": ctx.key_arn,
                "result": result,
                **(detail or {}),
            }
        )

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def new_key_id(multi_region: bool = False) -> str:
        """Return a fresh key id: a UUID, or ``mrk-`` and 32 hex digits (as AWS KMS)."""
        if multi_region:
            return MRK_PREFIX + secrets.token_hex(16)
        return str(uuid.uuid4())

    def describe(self, key: KeyRecord, tx: StoreTx | None = None) -> KeyMetadata:
        """Return the AWS ``KeyMetadata`` of ``key`` (with its current ``KeyMaterialId``).

        A multi-Region key's metadata names its related keys, read through ``tx`` (or a
        read transaction of its own).
        """
        has_material = key.current_version > 0 and key.key_state != "PendingImport"
        material_id = None
        if key.key_spec == "SYMMETRIC_DEFAULT" and has_material:
            material_id = self.materials.material_id_of(tx, key, key.current_version)
        related = None
        if key.multi_region:
            if tx is not None:
                related = related_rows(tx, key)
            else:
                related = self.read(lambda t: related_rows(t, key))
        return key_metadata(key, material_id, related)


def raise_unless_client_error(exc: BaseException) -> None:
    """Re-raise anything that is not a :class:`StrongroomError` unchanged."""
    if not isinstance(exc, StrongroomError):
        raise exc
