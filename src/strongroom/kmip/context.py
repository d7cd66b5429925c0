"""What one KMIP operation runs with: the client, the store, the key service and the clock.

The KMIP front-end reaches the key service through two narrow doors only: a
:class:`~strongroom.data.keys.DataKeyProvider` acting as the client's principal (sealing
and unsealing object material under the tenant's KMS key, so key policies, grants, key
state and the audit of ``GenerateDataKey``/``Decrypt`` all apply) and an
:class:`AuditSink` (the key service's audit chain) for the KMIP operations themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from strongroom.data.keys import DataKeyProvider
from strongroom.kmip.errors import KmipError
from strongroom.kmip.messages import Version
from strongroom.kmip.objects import ManagedObject, ObjectCache, read_object
from strongroom.kmip.tags import ResultReason, Tag
from strongroom.kmip.ttlv import Item
from strongroom.kms.caller import Caller
from strongroom.ports import Clock, Store


class AuditSink(Protocol):
    """Where audit events go: the key service's chained audit log (``KeyService.audit``)."""

    def record(self, event: dict[str, Any]) -> None:
        """Queue one event (never key material)."""
        ...

    def admit(self) -> None:
        """Raise if operations must be refused now (the audit log cannot be written)."""
        ...


@dataclass(frozen=True, slots=True)
class KmipClient:
    """An authenticated KMIP client: its tenant, principal and the KMS key over its objects."""

    tenant: str
    principal: str
    kms_key: str
    region: str = "us-east-1"
    fingerprint: str = ""
    caller: Caller = field(init=False, repr=False, compare=False)
    """The key-service principal this client acts as (one object, so audit caches hold)."""

    def __post_init__(self) -> None:
        caller = Caller(
            tenant=self.tenant,
            principal_arn=f"arn:aws:iam::{self.tenant}:user/kmip/{self.principal}",
            access_key_id=f"kmip:{self.fingerprint[:16]}",
            region=self.region,
        )
        object.__setattr__(self, "caller", caller)


@dataclass(frozen=True, slots=True)
class Kernel:
    """The collaborators every operation gets (built once per server)."""

    store: Store
    keys_for: Callable[[KmipClient], DataKeyProvider]
    audit: AuditSink
    clock: Clock
    cache: ObjectCache | None = None
    """Parsed object records for reads (emptied by every write through ``store``)."""


@dataclass(slots=True)
class OpCall:
    """One operation in flight."""

    kernel: Kernel
    client: KmipClient
    version: Version
    placeholder: str | None = None
    """The ID Placeholder: the object the previous operation of the batch named."""
    uid: str | None = None
    """The object this operation acted on (audited, then the next placeholder)."""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def v2(self) -> bool:
        """Whether the client speaks KMIP 2.x (attributes in ``Attributes`` structures)."""
        return self.version[0] >= 2

    @property
    def now(self) -> int:
        """The time, in whole seconds (KMIP Date-Time)."""
        return int(self.kernel.clock.now())

    @property
    def keys(self) -> DataKeyProvider:
        """The key service, acting as this client."""
        return self.kernel.keys_for(self.client)

    def read_object(self, uid: str) -> ManagedObject:
        """Object ``uid`` of this client's tenant, to read only (never change it)."""
        return read_object(self.kernel.store, self.kernel.cache, self.client.tenant, uid)

    def uid_of(self, payload: Item) -> str:
        """The payload's Unique Identifier, or the ID Placeholder; remembered for audit."""
        found = payload.find(Tag.UNIQUE_IDENTIFIER)
        uid = found.value if found is not None else self.placeholder
        if not isinstance(uid, str) or not uid:
            raise KmipError(ResultReason.MISSING_DATA, "missing Unique Identifier")
        self.uid = uid
        return uid
