"""Registration entries: which workloads get which SPIFFE ID, stored in the key store.

An entry names a SPIFFE ID and one or more selectors (``unix:uid:1000``,
``unix:gid:50``, ``unix:path:/usr/bin/web``...). A workload is entitled to the entry's ID
when EVERY selector of the entry is among the workload's attested selectors (as SPIRE
does), so more selectors mean a narrower entry. Entries live in tenant ``_global``, kind
``meshentry``, named by a random entry id.

An entry may name the **node** whose agent may have it issued (the user name of the
agent's access key, ``strongroom mesh register --node NAME``); without one, any mesh agent
may. An agent never gets an identity that no entry names, and the key server's own
identities (``spiffe://TD/strongroom/...``) cannot be registered at all: only the server
issues them, to itself.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from strongroom.errors import AlreadyExistsError, NotFoundError, StoreError, ValidationError
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.ports import GLOBAL_TENANT, Clock, Store, StoreTx

ENTRY_KIND = "meshentry"
SELECTOR_TYPES = ("unix",)
UNIX_KEYS = ("uid", "gid", "path", "user", "group")
MAX_SELECTORS = 32
_NUMBER = re.compile(r"[0-9]{1,10}")
_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,63}\$?")
_NODE = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
RESERVED_PATH = "/strongroom"
"""The key server's own identities live under this path (``--tls-from-mesh``)."""


def is_reserved(spiffe_id: SpiffeId) -> bool:
    """Whether ``spiffe_id`` is one of the key server's own identities."""
    return spiffe_id.path == RESERVED_PATH or spiffe_id.path.startswith(RESERVED_PATH + "/")


def check_node(node: str) -> None:
    """Raise ``ValidationError`` unless ``node`` is an access key's user name."""
    if not _NODE.fullmatch(node):
        raise ValidationError(f"a node is an agent key's user name (1-64 of \\w+=,.@-): {node!r}")


@dataclass(frozen=True, slots=True, order=True)
class Selector:
    """One attested property of a workload: ``type:key:value`` (``unix:uid:1000``)."""

    type: str
    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse and check ``unix:uid:N``, ``unix:gid:N``, ``unix:path:/abs``, user, group."""
        parts = text.split(":", 2)
        if len(parts) != 3:
            raise ValidationError(f"a selector is type:key:value, e.g. unix:uid:1000: {text!r}")
        selector = cls(*parts)
        selector.check()
        return selector

    def check(self) -> None:
        """Raise ``ValidationError`` unless this is a selector the agent can attest."""
        if self.type not in SELECTOR_TYPES:
            raise ValidationError(f"unknown selector type {self.type!r} (known: unix)")
        if self.key not in UNIX_KEYS:
            raise ValidationError(f"unknown unix selector {self.key!r} (known: {UNIX_KEYS})")
        if self.key in ("uid", "gid") and _NUMBER.fullmatch(self.value) is None:
            raise ValidationError(f"unix:{self.key} is a number: {self.value!r}")
        if self.key == "path" and (
            not self.value.startswith("/") or "\0" in self.value or len(self.value) > 4096
        ):
            raise ValidationError(f"unix:path is an absolute path: {self.value!r}")
        if self.key in ("user", "group") and _NAME.fullmatch(self.value) is None:
            raise ValidationError(f"unix:{self.key} is a user or group name: {self.value!r}")

    def __str__(self) -> str:
        return f"{self.type}:{self.key}:{self.value}"


@dataclass(frozen=True, slots=True)
class RegistrationEntry:
    """A SPIFFE ID and the selectors a workload must all have to get it."""

    entry_id: str
    spiffe_id: SpiffeId
    selectors: tuple[Selector, ...]
    created_at: float
    node: str | None = None

    def issuable_to(self, node: str | None) -> bool:
        """Whether the agent of ``node`` may have this entry's identity issued."""
        return not is_reserved(self.spiffe_id) and (self.node is None or self.node == node)

    def matches(self, attested: frozenset[Selector]) -> bool:
        """Whether a workload with ``attested`` selectors is entitled to this entry."""
        return all(s in attested for s in self.selectors)

    def to_json(self) -> dict[str, object]:
        """The entry as JSON (what ``strongroom mesh entries --json`` prints)."""
        out: dict[str, object] = {
            "entry_id": self.entry_id,
            "spiffe_id": str(self.spiffe_id),
            "selectors": [str(s) for s in self.selectors],
            "created_at": self.created_at,
        }
        if self.node is not None:
            out["node"] = self.node
        return out

    def to_bytes(self) -> bytes:
        """The stored form."""
        return json.dumps(self.to_json(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> RegistrationEntry:
        """Parse the stored form."""
        try:
            data = json.loads(raw)
            return cls(
                str(data["entry_id"]),
                SpiffeId.parse(data["spiffe_id"]),
                tuple(Selector.parse(s) for s in data["selectors"]),
                float(data["created_at"]),
                None if data.get("node") is None else str(data["node"]),
            )
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise StoreError("a stored registration entry is damaged") from exc


class Registry:
    """The registration entries in a key store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def register(
        self,
        spiffe_id: SpiffeId | str,
        selectors: Iterable[Selector | str],
        node: str | None = None,
    ) -> RegistrationEntry:
        """Add an entry; ``AlreadyExistsError`` if the same ID and selectors are registered.

        ``node`` confines the entry to the agent whose access key has that user name.
        """
        sid = spiffe_id if isinstance(spiffe_id, SpiffeId) else SpiffeId.parse(spiffe_id)
        if not sid.path:
            raise ValidationError("a workload's SPIFFE ID has a path")
        if is_reserved(sid):
            raise ValidationError(
                f"{sid} is reserved: spiffe://TD{RESERVED_PATH}/... are the key server's own "
                "identities, which only the server issues to itself"
            )
        if node is not None:
            check_node(node)
        chosen = tuple(
            sorted({s if isinstance(s, Selector) else Selector.parse(s) for s in selectors})
        )
        for selector in chosen:
            selector.check()
        if not chosen:
            raise ValidationError("an entry needs at least one selector (e.g. unix:uid:1000)")
        if len(chosen) > MAX_SELECTORS:
            raise ValidationError(f"an entry has at most {MAX_SELECTORS} selectors")
        entry = RegistrationEntry(uuid.uuid4().hex, sid, chosen, self._clock.now(), node)

        def add(tx: StoreTx) -> None:
            for _name, raw in tx.scan(GLOBAL_TENANT, ENTRY_KIND):
                other = RegistrationEntry.from_bytes(raw)
                if other.spiffe_id == sid and other.selectors == chosen and other.node == node:
                    raise AlreadyExistsError(
                        f"{sid} is registered with these selectors already ({other.entry_id})"
                    )
            tx.insert(GLOBAL_TENANT, ENTRY_KIND, entry.entry_id, entry.to_bytes())

        self._store.write(add)
        return entry

    def unregister(self, entry_id: str) -> RegistrationEntry:
        """Delete one entry by id; ``NotFoundError`` if there is none."""

        def remove(tx: StoreTx) -> RegistrationEntry:
            raw = tx.get(GLOBAL_TENANT, ENTRY_KIND, entry_id)
            if raw is None:
                raise NotFoundError(f"no registration entry {entry_id!r}")
            tx.delete(GLOBAL_TENANT, ENTRY_KIND, entry_id)
            return RegistrationEntry.from_bytes(raw)

        return self._store.write(remove)

    def entries(self, trust_domain: TrustDomain | None = None) -> list[RegistrationEntry]:
        """Every entry (of ``trust_domain`` if given), ordered by SPIFFE ID then id."""
        rows = self._store.read(lambda tx: tx.scan(GLOBAL_TENANT, ENTRY_KIND))
        found = [RegistrationEntry.from_bytes(raw) for _name, raw in rows]
        if trust_domain is not None:
            found = [e for e in found if e.spiffe_id.member_of(trust_domain)]
        return sorted(found, key=lambda e: (str(e.spiffe_id), e.entry_id))

    def match(
        self, attested: frozenset[Selector], trust_domain: TrustDomain | None = None
    ) -> list[RegistrationEntry]:
        """The entries a workload with ``attested`` selectors is entitled to."""
        return [e for e in self.entries(trust_domain) if e.matches(attested)]

    def issuable(self, spiffe_id: SpiffeId, node: str | None) -> bool:
        """Whether some entry lets the agent of ``node`` have ``spiffe_id`` issued."""
        return any(
            e.spiffe_id == spiffe_id and e.issuable_to(node)
            for e in self.entries(spiffe_id.trust_domain)
        )
