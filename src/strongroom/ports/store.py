"""The store port: a transactional, ordered key-value space, and the audit records in it.

``strongroom.store`` holds the implementations (SQLite, PostgreSQL); one contract suite
runs over every one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:
    from strongroom.ports.audit_chain import AuditChain

T = TypeVar("T")

GLOBAL_TENANT = "_global"
"""The tenant name of rows that belong to no tenant (tenant names, principals, CAs)."""


class AuditRecord(NamedTuple):
    """One stored audit event: its place in the chain and the hashes that link it.

    A named tuple (immutable, as a frozen dataclass, but made in a third of the time: a
    flush makes one per event).
    """

    seq: int
    body: bytes
    prev_hash: bytes
    hash: bytes


class StoreTx(Protocol):
    """One transaction over the key store: a transactional, ordered key-value space.

    Records are addressed by ``(tenant, kind, name)``; ``kind`` is a short fixed string
    naming the record type (``"key"``, ``"alias"``, ``"userkey"``...) and ``name`` is
    unique within a tenant and kind. Values are opaque bytes (the core serialises its own
    records). Scans return records in ascending byte order of ``name``. Everything read
    and written through one ``StoreTx`` is one atomic, isolated unit: it is all kept or
    all lost, and a crash after :meth:`Store.write` returns loses none of it.
    """

    def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        """Return the value of one record, or ``None``."""
        ...

    def get_for_update(self, tenant: str, kind: str, name: str) -> bytes | None:
        """Like :meth:`get`, and lock the record until the transaction ends."""
        ...

    def insert(self, tenant: str, kind: str, name: str, value: bytes) -> bool:
        """Create a record; return ``False`` (changing nothing) if it exists already."""
        ...

    def insert_many(self, tenant: str, kind: str, items: Sequence[tuple[str, bytes]]) -> int:
        """Create many records of one kind; skip names that exist; return how many were new."""
        ...

    def get_many(self, tenant: str, kind: str, names: Sequence[str]) -> dict[str, bytes]:
        """The values of those of ``names`` that exist (one round trip, not one per name)."""
        ...

    def put(self, tenant: str, kind: str, name: str, value: bytes) -> None:
        """Create or replace a record."""
        ...

    def put_many(self, tenant: str, kind: str, items: Sequence[tuple[str, bytes]]) -> None:
        """Create or replace many records of one kind (for duplicate names, the last wins)."""
        ...

    def delete(self, tenant: str, kind: str, name: str) -> bool:
        """Delete a record; return whether it existed."""
        ...

    def delete_prefix(self, tenant: str, kind: str, prefix: str) -> int:
        """Delete every record of ``kind`` whose name starts with ``prefix``; return the count."""
        ...

    def scan(
        self,
        tenant: str,
        kind: str,
        prefix: str = "",
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, bytes]]:
        """Return ``(name, value)`` of records whose name starts with ``prefix``.

        Only names strictly greater than ``after`` are returned, at most ``limit`` of them,
        in ascending order: this is how listings paginate.
        """
        ...

    def count(self, tenant: str, kind: str, prefix: str = "") -> int:
        """Return how many records of ``kind`` have a name starting with ``prefix``."""
        ...

    def tenants(self) -> list[str]:
        """Return every tenant that has at least one record, ascending."""
        ...

    def kinds(self, tenant: str) -> list[str]:
        """Return every kind that has at least one record of ``tenant``, ascending.

        With :meth:`tenants` and :meth:`scan` this enumerates the whole store (backups).
        """
        ...

    def append_audit(
        self,
        bodies: Sequence[bytes],
        chain: AuditChain = ...,
    ) -> list[AuditRecord]:
        """Append events to the hash-chained audit log, in order, and return them.

        Each event's hash is ``chain.link(prev_hash, seq, body)``
        (:class:`~strongroom.ports.audit_chain.AuditChain`: keyed with the deployment's
        audit key; the default, unkeyed, is for stores used without a key service);
        concurrent appenders (other processes over the same database) are serialised so
        the chain never forks.
        """
        ...

    def append_audit_head(
        self,
        bodies: Sequence[bytes],
        chain: AuditChain = ...,
    ) -> AuditRecord | None:
        """:meth:`append_audit`, returning only the newest event (``None`` if no bodies).

        The audit flush needs only the new head: it makes no record per event.
        """
        ...

    def read_audit(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Return audit records with ``seq > after_seq`` in ascending order.

        A row that is not an audit record (a column of the wrong type or size) raises
        :class:`~strongroom.ports.audit_chain.MalformedAuditRecord` naming it.
        """
        ...


class Store(Protocol):
    """A durable key store. Units of work are functions run inside one transaction."""

    def read(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in a read-only transaction and return its result."""
        ...

    def write(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in a read-write transaction, commit durably, return its result.

        On a serialisation conflict with a concurrent writer the transaction is rolled
        back and ``fn`` runs again, so ``fn`` must have no effects outside ``tx``.
        Exceptions raised by ``fn`` roll the transaction back and propagate unchanged.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
