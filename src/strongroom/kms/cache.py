"""The key service's in-memory caches.

:class:`TtlCache` holds unwrapped key material: entries expire ``ttl_s`` after they were
put; past ``max_entries`` the oldest go first; it never logs or shows its values.

:class:`RecordCache` holds parsed key and alias records for a very short time, so the hot
operations (Encrypt, Decrypt, GenerateDataKey) need no store round trip. Any write unit of
this process ends every entry at once (:class:`WriteWatchingStore` reports writes), so a
change made here is seen here immediately; a change made by another process is seen
within the record TTL. :class:`CacheOnlyTx` lets a read unit run from caches alone: the
first store call raises :class:`NeedsStore` and the unit is run again in a transaction.
:class:`HotRecords` puts these together for the key service core, and has records still in
use past half their TTL read again in the background (:mod:`strongroom.kms.record_refresh`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, NoReturn, TypeVar

from strongroom.kms.record_refresh import Item, Refresher
from strongroom.kms.records import AliasRecord, KeyRecord
from strongroom.ports import Store, StoreTx

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class TtlCache(Generic[K, V]):
    """A least-recently-put cache with a time-to-live per entry."""

    def __init__(self, ttl_s: float, max_entries: int, now: Callable[[], float]) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._now = now
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TtlCache(entries={len(self._items)}, values=<hidden>)"

    def get(self, key: K) -> V | None:
        """Return the live value for ``key`` or ``None``."""
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self._now() >= expires:
            with self._lock:
                self._items.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``; evict the oldest entries past the size bound."""
        if self._max <= 0 or self._ttl <= 0:
            return
        with self._lock:
            self._items[key] = (self._now() + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def discard(self, key: K) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._items.pop(key, None)

    def drop_where(self, predicate: Callable[[K], bool]) -> None:
        """Remove every entry whose key matches ``predicate``."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                del self._items[key]

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._items.clear()


class RecordCache(Generic[K, V]):
    """Recently read records, valid for ``ttl_s`` and until the next :meth:`invalidate`.

    A reader takes :attr:`generation` before its transaction starts and passes it to
    :meth:`put`; an entry read before a write of this process committed is refused or
    dropped, never served after it.
    """

    def __init__(self, ttl_s: float, max_entries: int, now: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self._max = max_entries
        self._now = now
        # key -> (expires, value, refresh due): a copy past half its life is read again
        self._items: dict[K, tuple[float, V, float]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RecordCache(entries={len(self._items)}, generation={self._generation})"

    @property
    def generation(self) -> int:
        """The current generation: it changes on every :meth:`invalidate`."""
        return self._generation

    def get(self, key: K) -> V | None:
        """Return the live record for ``key`` or ``None``."""
        item = self._items.get(key)
        if item is None or self._now() >= item[0]:
            return None
        return item[1]

    def put(self, key: K, value: V, generation: int, read_at: float | None = None) -> None:
        """Keep ``value`` if nothing was invalidated since ``generation`` was taken.

        It expires ``ttl_s`` after ``read_at`` (when its read began), or after now.
        """
        if self.ttl_s <= 0 or self._max <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._items) >= self._max and key not in self._items:
                del self._items[next(iter(self._items))]
            start = self._now() if read_at is None else read_at
            self._items[key] = (start + self.ttl_s, value, start + self.ttl_s / 2)

    def discard(self, key: K) -> None:
        """Forget ``key`` (its record is gone from the store)."""
        with self._lock:
            self._items.pop(key, None)

    def invalidate(self) -> None:
        """Forget every entry and start a new generation."""
        with self._lock:
            self._generation += 1
            self._items = {}


class NeedsStore(BaseException):
    """A unit run by :class:`CacheOnlyTx` needs the store; run it in a real transaction.

    A ``BaseException``, so ``except Exception`` in a unit does not swallow it.
    """


class CacheOnlyTx:
    """A :class:`~strongroom.ports.StoreTx` with no store: every call raises NeedsStore."""

    def __getattr__(self, name: str) -> NoReturn:
        raise NeedsStore(name)


class WriteWatchingStore:
    """A :class:`~strongroom.ports.Store` that calls ``on_write`` after every write unit.

    Other attributes (``path``, ``schema_version``...) are those of the wrapped store.
    """

    def __init__(
        self,
        store: Store,
        on_write: Callable[[], None],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.inner = store
        self._on_write = on_write
        self._on_close = on_close

    def __repr__(self) -> str:
        return f"WriteWatchingStore({self.inner!r})"

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def read(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in a read transaction of the wrapped store."""
        return self.inner.read(fn)

    def write(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in a write transaction, then report the write (also on failure)."""
        try:
            return self.inner.write(fn)
        finally:
            self._on_write()

    def close(self) -> None:
        """Call ``on_close`` (if given), then close the wrapped store."""
        try:
            if self._on_close is not None:
                self._on_close()
        finally:
            self.inner.close()


class HotRecords:
    """Key and alias records for the hot read units, and how those units run.

    :meth:`run` runs a read unit first from caches alone, then (if it needs the store) in
    a read transaction with the generation taken before that transaction starts. Inside
    such a unit :meth:`key` and :meth:`alias_target` serve recent copies; elsewhere they
    read the store. ``active`` is the service's thread-local whose ``tx`` attribute names
    the running transaction (so nested lookups of the unit see the cache-only one).
    """

    def __init__(self, ttl_s: float, now: Callable[[], float], active: threading.local) -> None:
        self.enabled = ttl_s > 0
        self._keys: RecordCache[tuple[str, str], KeyRecord] = RecordCache(ttl_s, 10_000, now)
        self._aliases: RecordCache[tuple[str, str], str] = RecordCache(ttl_s, 10_000, now)
        self._active = active
        self._local = threading.local()  # .generation while a unit may use the cache
        self._cache_only: StoreTx = CacheOnlyTx()
        self._read: Callable[[Callable[[StoreTx], object]], object] | None = None
        self._refresher = Refresher(self._reload, "strongroom-record-refresh")

    def refresh_with(self, read: Callable[[Callable[[StoreTx], object]], object]) -> None:
        """Read records in use again before they expire, through ``read`` (off requests).

        ``read`` runs a unit in a read transaction of the service's store
        (:mod:`strongroom.kms.record_refresh` says why and what stays bounded).
        """
        self._read = read

    def wait_refreshed(self, timeout: float) -> bool:
        """Wait until the background reads asked for so far are done (tests, benchmarks)."""
        return self._refresher.wait_idle(timeout)

    def close(self) -> None:
        """Stop reading records in the background (the store is closing)."""
        self._refresher.close()

    def _reload(self, item: Item) -> None:
        """Read one record again and keep it (on the refresher's thread)."""
        kind, account_id, name = item
        read = self._read
        if read is None:
            return
        cache: RecordCache[tuple[str, str], KeyRecord] | RecordCache[tuple[str, str], str]
        cache = self._keys if kind == "key" else self._aliases
        generation, read_at = cache.generation, cache._now()  # both before the transaction
        raw = read(lambda tx: tx.get(account_id, kind, name))
        if not isinstance(raw, bytes):
            cache.discard((account_id, name))  # gone: the next request finds out itself
        elif kind == "key":
            self._keys.put((account_id, name), KeyRecord.from_bytes(raw), generation, read_at)
        else:
            target = AliasRecord.from_bytes(raw).key_id
            self._aliases.put((account_id, name), target, generation, read_at)

    def ask_refresh(self, item: Item) -> None:
        """Have ``item`` (past half its life) read again in the background, if that is on."""
        if self._read is not None:
            self._refresher.request(item)

    def invalidate(self) -> None:
        """Forget every record (a write unit of this process ended)."""
        self._keys.invalidate()
        self._aliases.invalidate()

    def run(self, fn: Callable[[StoreTx], T], read: Callable[[Callable[[StoreTx], T]], T]) -> T:
        """Run the read unit ``fn`` from caches alone if it can, else through ``read``."""
        if not self.enabled:
            return read(fn)
        # the thread's own attribute dicts: an item costs less than a threading.local
        # attribute, and every read unit saves and restores two of them
        local, active = self._local.__dict__, self._active.__dict__
        outer_gen, outer_tx = local.get("generation"), active.get("tx")
        cache_only = self._cache_only
        try:
            # RecordCache.generation, read without the property: every read unit starts here
            local["generation"], active["tx"] = self._keys._generation, cache_only
            try:
                return fn(cache_only)
            except NeedsStore:
                pass
            active["tx"] = outer_tx
            local["generation"] = self._keys._generation  # before the transaction starts
            return read(fn)
        finally:
            local["generation"], active["tx"] = outer_gen, outer_tx

    @contextmanager
    def bypass(self) -> Iterator[None]:
        """Within the block, read the store even inside :meth:`run` (and keep nothing)."""
        outer = getattr(self._local, "generation", None)
        self._local.generation = None
        try:
            yield
        finally:
            self._local.generation = outer

    def key(self, tx: StoreTx, account_id: str, key_id: str) -> KeyRecord | None:
        """The record of a key (maybe a recent copy inside :meth:`run`), or ``None``."""
        generation: int | None = getattr(self._local, "generation", None)
        if generation is not None:
            # RecordCache.get, inlined: every operation on a key comes here first
            item = self._keys._items.get((account_id, key_id))
            if item is not None:
                now = self._keys._now()
                if now < item[0]:
                    if now >= item[2]:  # past half its life
                        self.ask_refresh(("key", account_id, key_id))
                    return item[1]
        raw = tx.get(account_id, "key", key_id)
        if raw is None:
            return None
        key = KeyRecord.from_bytes(raw)
        if generation is not None:
            self._keys.put((account_id, key_id), key, generation)
        return key

    def alias_target(self, tx: StoreTx, account_id: str, name: str) -> str | None:
        """The key id an alias (store name ``<region>/alias/...``) points at, or ``None``."""
        generation: int | None = getattr(self._local, "generation", None)
        if generation is not None:
            item = self._aliases._items.get((account_id, name))
            if item is not None:
                now = self._aliases._now()
                if now < item[0]:
                    if now >= item[2]:  # past half its life
                        self.ask_refresh(("alias", account_id, name))
                    return item[1]
        raw = tx.get(account_id, "alias", name)
        if raw is None:
            return None
        target = AliasRecord.from_bytes(raw).key_id
        if generation is not None:
            self._aliases.put((account_id, name), target, generation)
        return target
