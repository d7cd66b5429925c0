"""A data-key cache in front of a key service, as the AWS Encryption SDK's caching CMM.

Asking the key service for a fresh data key per object costs a round trip (and, on AWS, a
request charge) per object. :class:`CachingDataKeys` wraps any
:class:`~strongroom.data.keys.DataKeyProvider` and reuses a data key for several objects
within security bounds (:class:`CacheLimits`): a maximum age, a maximum number of
objects (messages) and a maximum number of plaintext bytes per data key, and a capacity
(entries, least recently used first out). Every stream still gets its own key schedule
from its random 32-byte salt, so reusing a data key never reuses a chunk key.

Encryption entries are keyed by ``(key id, canonical encryption context)``: a data key
is only reused for the same KMS key and exactly the same context. As in the SDK, only
requests that say how many bytes they will encrypt (:meth:`generate_data_key_for`) use
the cache; :meth:`generate_data_key` (length unknown: streams) always asks the service.
Decryption entries are keyed by ``(wrapped key, canonical context, key id)`` and hold
the unwrapped key, so reading many objects under one data key asks the service once.

The bounds are the price: a key disabled, scheduled for deletion or a user key destroyed
goes on working from the cache until its entries expire (or :meth:`CachingDataKeys.clear`).
A cache serves one principal; do not share one between callers of different rights.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from strongroom.crypto.context import encode_context
from strongroom.data.keys import DataKey, DataKeyProvider
from strongroom.errors import ValidationError

MAX_MESSAGES_LIMIT = 1 << 32
"""Most objects one data key may encrypt (the SDK's bound too)."""


@runtime_checkable
class SizedDataKeyProvider(DataKeyProvider, Protocol):
    """A provider that can use the plaintext length of a request (a cache, for one)."""

    def generate_data_key_for(
        self, key_id: str, context: Mapping[str, str] | None, plaintext_length: int | None
    ) -> DataKey:
        """A data key to encrypt ``plaintext_length`` bytes (``None``: unknown)."""
        ...


def data_key_for(
    provider: DataKeyProvider,
    key_id: str,
    context: Mapping[str, str] | None,
    plaintext_length: int | None,
) -> DataKey:
    """A data key from ``provider``, telling it the plaintext length if it can use it."""
    if isinstance(provider, SizedDataKeyProvider):
        return provider.generate_data_key_for(key_id, context, plaintext_length)
    return provider.generate_data_key(key_id, context)


@dataclass(frozen=True, slots=True)
class CacheLimits:
    """Bounds of a data-key cache; each entry is dropped once it would exceed one."""

    max_age_s: float = 300.0
    """Seconds a data key (or an unwrapped one) stays in the cache."""
    max_messages: int = 1000
    """Objects encrypted under one data key."""
    max_bytes: int = 1 << 32
    """Plaintext bytes encrypted under one data key."""
    capacity: int = 1000
    """Entries of each side (encryption, decryption); the least recently used go first."""

    def __post_init__(self) -> None:
        if not self.max_age_s > 0:
            raise ValidationError("max_age_s must be positive.")
        if not 1 <= self.max_messages <= MAX_MESSAGES_LIMIT:
            raise ValidationError(f"max_messages must be 1 to {MAX_MESSAGES_LIMIT}.")
        if self.max_bytes < 1:
            raise ValidationError("max_bytes must be at least 1.")
        if self.capacity < 1:
            raise ValidationError("capacity must be at least 1.")


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Hits and misses so far (misses asked the underlying provider)."""

    encrypt_hits: int
    encrypt_misses: int
    decrypt_hits: int
    decrypt_misses: int


class _Entry:
    """A cached data key and what it has been used for. Holds secret material."""

    __slots__ = ("created", "data_key", "messages", "plaintext_bytes")

    def __init__(self, data_key: DataKey, created: float, messages: int, size: int) -> None:
        self.data_key = data_key
        self.created = created
        self.messages = messages
        self.plaintext_bytes = size

    def __repr__(self) -> str:
        return "_Entry(<hidden>)"


class CachingDataKeys:
    """A :class:`~strongroom.data.keys.DataKeyProvider` that reuses data keys within limits.

    ``clock`` (monotonic seconds) is injectable for tests. Thread-safe; the underlying
    provider is called outside the lock, so two threads missing at once both ask it.
    """

    def __init__(
        self,
        provider: DataKeyProvider,
        limits: CacheLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._limits = limits or CacheLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._encrypt: OrderedDict[tuple[str, bytes], _Entry] = OrderedDict()
        self._decrypt: OrderedDict[tuple[bytes, bytes, str | None], tuple[float, bytes]] = (
            OrderedDict()
        )
        self._counts = [0, 0, 0, 0]

    @property
    def limits(self) -> CacheLimits:
        """The bounds of this cache."""
        return self._limits

    @property
    def stats(self) -> CacheStats:
        """Hits and misses so far."""
        with self._lock:
            return CacheStats(*self._counts)

    def __len__(self) -> int:
        """Entries held now (both sides)."""
        with self._lock:
            return len(self._encrypt) + len(self._decrypt)

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        """A fresh data key from the provider: the length is unknown, so no caching."""
        return self.generate_data_key_for(key_id, context, None)

    def generate_data_key_for(
        self, key_id: str, context: Mapping[str, str] | None, plaintext_length: int | None
    ) -> DataKey:
        """A cached data key if one has room for ``plaintext_length`` more bytes, else a new one.

        With ``plaintext_length=None`` (or more than ``max_bytes``) the cache is bypassed.
        """
        limits = self._limits
        if plaintext_length is None or not 0 <= plaintext_length <= limits.max_bytes:
            with self._lock:
                self._counts[1] += 1
            return self._provider.generate_data_key(key_id, context)
        slot = (key_id, encode_context(context))
        with self._lock:
            entry = self._encrypt.get(slot)
            if entry is not None:
                if self._usable(entry, plaintext_length):
                    entry.messages += 1
                    entry.plaintext_bytes += plaintext_length
                    self._encrypt.move_to_end(slot)
                    self._counts[0] += 1
                    return entry.data_key
                del self._encrypt[slot]
            self._counts[1] += 1
        data_key = self._provider.generate_data_key(key_id, context)
        now = self._clock()
        with self._lock:
            self._encrypt[slot] = _Entry(data_key, now, 1, plaintext_length)
            self._encrypt.move_to_end(slot)
            self._remember(data_key.wrapped, slot[1], data_key.key_arn, now, data_key.plaintext)
            while len(self._encrypt) > limits.capacity:
                self._encrypt.popitem(last=False)
        return data_key

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """The unwrapped key from the cache, or from the provider (and then cached).

        A hit needs the same wrapped bytes, the same context and the same ``key_id``
        argument as the call that filled the entry; failures are never cached.
        """
        slot = (bytes(wrapped_key), encode_context(context), key_id)
        with self._lock:
            found = self._decrypt.get(slot)
            if found is not None:
                if self._clock() - found[0] < self._limits.max_age_s:
                    self._decrypt.move_to_end(slot)
                    self._counts[2] += 1
                    return found[1]
                del self._decrypt[slot]
            self._counts[3] += 1
        plaintext = self._provider.decrypt_data_key(wrapped_key, context, key_id)
        with self._lock:
            self._remember(slot[0], slot[1], key_id, self._clock(), plaintext)
        return plaintext

    def clear(self) -> None:
        """Drop every entry (after disabling a key or destroying a user key, say)."""
        with self._lock:
            self._encrypt.clear()
            self._decrypt.clear()

    def _usable(self, entry: _Entry, size: int) -> bool:
        limits = self._limits
        return (
            self._clock() - entry.created < limits.max_age_s
            and entry.messages < limits.max_messages
            and entry.plaintext_bytes + size <= limits.max_bytes
        )

    def _remember(
        self, wrapped: bytes, context: bytes, key_id: str | None, now: float, plaintext: bytes
    ) -> None:
        """Put an unwrapped key in the decryption side (lock held)."""
        slot = (wrapped, context, key_id)
        self._decrypt[slot] = (now, plaintext)
        self._decrypt.move_to_end(slot)
        while len(self._decrypt) > self._limits.capacity:
            self._decrypt.popitem(last=False)

    def __repr__(self) -> str:
        return f"CachingDataKeys({self._provider!r}, {self._limits!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a data-key cache cannot be pickled")
