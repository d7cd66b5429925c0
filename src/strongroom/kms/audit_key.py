"""The audit key: the secret that keys the audit chain, kept in the store wrapped by the root.

One record, ``(_global, auditkey, chain)``, holds the 32-byte key wrapped by the root of
trust and the number of the first event it keys (``keyedFrom``). That number is part of
the wrap's identity, so moving it (to pass keyed events off as unkeyed ones) makes the key
unwrap fail. The key is made once:

- on a new store, keying the chain from event 1;
- on a store made before the chain was keyed (a migration): the unkeyed prefix is verified
  once, then the key is made keying the events after it. The first keyed event links to
  the prefix's last hash, so it seals the prefix; :func:`open_audit_chain` returns that
  prefix's head so the caller writes the first signed checkpoint of it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from strongroom.crypto.hazmat import new_key
from strongroom.crypto.wrap import key_identity
from strongroom.errors import RootOfTrustError, StoreError
from strongroom.ports import GLOBAL_TENANT, RootOfTrust, Store, StoreTx
from strongroom.ports.audit_chain import (
    GENESIS_HASH,
    UNKEYED,
    AuditChain,
    ChainBroken,
    verify_chain,
)

AUDIT_KEY_KIND = "auditkey"
AUDIT_KEY_NAME = "chain"
AUDIT_KEY_VERSION = 1
_PAGE = 5000


@dataclass(frozen=True, slots=True)
class SealedPrefix:
    """The unkeyed events a migration sealed: the last one's number and hash."""

    seq: int
    head: bytes


def _identity(keyed_from: int) -> bytes:
    return key_identity("audit-chain", AUDIT_KEY_VERSION, keyed_from)


def load_audit_chain(tx: StoreTx, root: RootOfTrust) -> AuditChain | None:
    """The store's keyed chain, or ``None`` if it has no audit key (yet)."""
    raw = tx.get(GLOBAL_TENANT, AUDIT_KEY_KIND, AUDIT_KEY_NAME)
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        if record.get("v") != AUDIT_KEY_VERSION:
            raise ValueError("version")
        keyed_from = record["keyedFrom"]
        if isinstance(keyed_from, bool) or not isinstance(keyed_from, int) or keyed_from < 1:
            raise ValueError("keyedFrom")
        wrapped = base64.b64decode(record["wrapped"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError("the audit key record is damaged: the chain cannot be keyed") from exc
    try:
        key = root.unwrap(wrapped, _identity(keyed_from))
    except RootOfTrustError as exc:
        raise RootOfTrustError(
            "the audit key does not unwrap under this root of trust (its record was altered "
            "in the store, or the store belongs to another root of trust)"
        ) from exc
    return AuditChain(key, keyed_from)


def _new_key_record(root: RootOfTrust, keyed_from: int) -> tuple[bytes, AuditChain]:
    key = new_key()
    wrapped = root.wrap(key, _identity(keyed_from))
    value = json.dumps(
        {
            "v": AUDIT_KEY_VERSION,
            "keyedFrom": keyed_from,
            "wrapped": base64.b64encode(wrapped).decode("ascii"),
        },
        sort_keys=True,
    ).encode("ascii")
    return value, AuditChain(key, keyed_from)


def _verify_unkeyed(tx: StoreTx, after: int, prev: bytes) -> tuple[int, bytes]:
    while True:
        page = tx.read_audit(after_seq=after, limit=_PAGE)
        after, prev = verify_chain(page, prev, after)
        if len(page) < _PAGE:
            return after, prev


def open_audit_chain(store: Store, root: RootOfTrust) -> tuple[AuditChain, SealedPrefix | None]:
    """The store's keyed chain, making the audit key first if the store has none.

    Returns the chain and, if this call keyed an existing unkeyed chain, the prefix it
    sealed. Raises :class:`StoreError` if that unkeyed prefix does not verify (nothing is
    changed then: ``strongroom admin audit verify`` names the broken event).
    """
    found = store.read(lambda tx: load_audit_chain(tx, root))
    if found is not None:
        return found, None
    # Verify the unkeyed prefix in read transactions first (it may be long), then check
    # only what was appended meanwhile inside the write that makes the key.
    try:
        seq, head = store.read(lambda tx: _verify_unkeyed(tx, 0, GENESIS_HASH))
    except ChainBroken as exc:
        raise StoreError(
            f"the audit chain of this store is broken at event {exc.seq} ({exc.reason}) "
            "before it was keyed: run 'strongroom admin audit verify'"
        ) from exc

    def unit(tx: StoreTx) -> tuple[AuditChain, SealedPrefix | None]:
        again = load_audit_chain(tx, root)
        if again is not None:  # another process keyed it first
            return again, None
        last, last_hash = _verify_unkeyed(tx, seq, head)
        value, chain = _new_key_record(root, last + 1)
        tx.put(GLOBAL_TENANT, AUDIT_KEY_KIND, AUDIT_KEY_NAME, value)
        return chain, (SealedPrefix(last, last_hash) if last else None)

    try:
        return store.write(unit)
    except ChainBroken as exc:
        raise StoreError(
            f"the audit chain of this store is broken at event {exc.seq} ({exc.reason}) "
            "before it was keyed: run 'strongroom admin audit verify'"
        ) from exc


def read_audit_chain(store: Store, root: RootOfTrust) -> AuditChain:
    """The store's chain for reading: keyed if it has an audit key, else unkeyed."""
    found = store.read(lambda tx: load_audit_chain(tx, root))
    return UNKEYED if found is None else found
