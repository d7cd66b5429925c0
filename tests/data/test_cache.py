"""The data-key cache over the real in-process key service (calls counted, not mocked)."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Mapping

import pytest

from strongroom.data import DataKey, InProcessDataKeys
from strongroom.data.cache import CacheLimits, CachingDataKeys, data_key_for
from strongroom.data.objects import ObjectStore
from strongroom.data.objects_memory import MemoryBackend
from strongroom.errors import DisabledError, InvalidCiphertextError, ValidationError
from strongroom.kms import Caller, KeyService

CTX = {"app": "billing"}


class Counting:
    """A DataKeyProvider that counts the calls it passes on to the real one."""

    def __init__(self, inner: InProcessDataKeys) -> None:
        self.inner = inner
        self.generated = 0
        self.decrypted = 0

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        self.generated += 1
        return self.inner.generate_data_key(key_id, context)

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        self.decrypted += 1
        return self.inner.decrypt_data_key(wrapped_key, context, key_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def counting(alice_keys: InProcessDataKeys) -> Counting:
    return Counting(alice_keys)


def test_ten_thousand_small_puts_make_a_handful_of_key_service_calls(
    counting: Counting, alice: Caller, alice_key: str
) -> None:
    cache = CachingDataKeys(counting, CacheLimits(max_messages=4096, max_age_s=600))
    backend = MemoryBackend()
    store = ObjectStore(backend, cache, tenant=alice.tenant, key_id=alice_key)
    for i in range(10_000):
        store.put(f"events/{i:05d}", b"event %d" % i, CTX)
    # ceil(10,000 / 4,096) for the objects, ceil(20,000 / 4,096) for their index entries
    # (each put writes its entry twice: the new version pending, then current)
    assert counting.generated == 3 + 5
    assert counting.decrypted == 0
    assert store.get("events/09999") == b"event 9999"
    assert counting.decrypted == 0  # the put left the unwrapped key in the cache
    # a fresh cache (another process, say) reading them back asks once per data key
    reader = ObjectStore(backend, CachingDataKeys(counting), tenant=alice.tenant)
    for i in range(0, 10_000, 7):
        assert reader.get(f"events/{i:05d}", context=CTX) == b"event %d" % i
    assert counting.decrypted == 3 + 5


def test_message_limit(counting: Counting, alice_key: str) -> None:
    cache = CachingDataKeys(counting, CacheLimits(max_messages=3))
    keys = [cache.generate_data_key_for(alice_key, CTX, 10) for _ in range(7)]
    assert counting.generated == 3
    assert [k.wrapped for k in keys].count(keys[0].wrapped) == 3
    assert keys[2] is keys[0] and keys[3] is not keys[0] and keys[6] is not keys[3]


def test_byte_limit_and_requests_too_large_or_of_unknown_size(
    counting: Counting, alice_key: str
) -> None:
    cache = CachingDataKeys(counting, CacheLimits(max_bytes=1000))
    a = cache.generate_data_key_for(alice_key, CTX, 400)
    assert cache.generate_data_key_for(alice_key, CTX, 600) is a  # exactly 1000
    b = cache.generate_data_key_for(alice_key, CTX, 1)
    assert b is not a and counting.generated == 2
    assert cache.generate_data_key_for(alice_key, CTX, 1001) not in (a, b)  # bypass
    assert cache.generate_data_key(alice_key, CTX) not in (a, b)  # unknown size: bypass
    assert data_key_for(cache, alice_key, CTX, None) not in (a, b)
    assert counting.generated == 5
    assert cache.generate_data_key_for(alice_key, CTX, 1) is b  # bypasses did not evict


def test_age_limit(counting: Counting, alice_key: str) -> None:
    clock = Clock()
    cache = CachingDataKeys(counting, CacheLimits(max_age_s=60), clock=clock)
    a = cache.generate_data_key_for(alice_key, CTX, 1)
    clock.now += 59.9
    assert cache.generate_data_key_for(alice_key, CTX, 1) is a
    assert cache.decrypt_data_key(a.wrapped, CTX, a.key_arn) == a.plaintext
    clock.now += 0.1
    assert cache.generate_data_key_for(alice_key, CTX, 1) is not a
    assert counting.decrypted == 0
    assert cache.decrypt_data_key(a.wrapped, CTX, a.key_arn) == a.plaintext
    assert counting.decrypted == 1  # expired on the decryption side too


def test_entries_are_per_key_and_exact_context(
    service: KeyService, alice: Caller, counting: Counting, alice_key: str
) -> None:
    other_key = service.call(alice, "CreateKey", {})["KeyMetadata"]["Arn"]
    cache = CachingDataKeys(counting)
    base = cache.generate_data_key_for(alice_key, {"a": "1", "b": "2"}, 1)
    assert cache.generate_data_key_for(alice_key, {"b": "2", "a": "1"}, 1) is base
    for key_id, context in [
        (alice_key, {"a": "1"}),
        (alice_key, {"a": "1", "b": "2", "c": "3"}),
        (alice_key, {"a": "1", "b": "3"}),
        (alice_key, None),
        (other_key, {"a": "1", "b": "2"}),
    ]:
        assert cache.generate_data_key_for(key_id, context, 1) is not base
    assert counting.generated == 6
    assert cache.generate_data_key_for(alice_key, {}, 1) is cache.generate_data_key_for(
        alice_key, None, 1
    )


def test_capacity_evicts_the_least_recently_used(counting: Counting, alice_key: str) -> None:
    cache = CachingDataKeys(counting, CacheLimits(capacity=2))
    a = cache.generate_data_key_for(alice_key, {"n": "a"}, 1)
    b = cache.generate_data_key_for(alice_key, {"n": "b"}, 1)
    assert cache.generate_data_key_for(alice_key, {"n": "a"}, 1) is a  # a is now recent
    cache.generate_data_key_for(alice_key, {"n": "c"}, 1)  # evicts b
    assert cache.generate_data_key_for(alice_key, {"n": "a"}, 1) is a
    assert cache.generate_data_key_for(alice_key, {"n": "b"}, 1) is not b
    assert len(cache) <= 4


def test_decrypt_side_hits_only_the_same_request_and_never_caches_failures(
    counting: Counting, alice_keys: InProcessDataKeys, alice_key: str
) -> None:
    made = alice_keys.generate_data_key(alice_key, CTX)
    cache = CachingDataKeys(counting)
    for _ in range(3):
        assert cache.decrypt_data_key(made.wrapped, CTX) == made.plaintext
    assert counting.decrypted == 1
    assert cache.decrypt_data_key(made.wrapped, CTX, made.key_arn) == made.plaintext
    assert counting.decrypted == 2  # another key id argument is another entry
    for _ in range(2):
        with pytest.raises(InvalidCiphertextError):
            cache.decrypt_data_key(made.wrapped, {"app": "other"})
    assert counting.decrypted == 4
    assert cache.stats.decrypt_hits == 2 and cache.stats.decrypt_misses == 4


def test_a_disabled_key_works_from_the_cache_until_cleared(
    service: KeyService, alice: Caller, counting: Counting, alice_key: str
) -> None:
    cache = CachingDataKeys(counting)
    made = cache.generate_data_key_for(alice_key, CTX, 1)
    service.call(alice, "DisableKey", {"KeyId": alice_key})
    assert cache.generate_data_key_for(alice_key, CTX, 1) is made  # the documented price
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(DisabledError):
        cache.generate_data_key_for(alice_key, CTX, 1)
    with pytest.raises(DisabledError):
        cache.decrypt_data_key(made.wrapped, CTX)


def test_threads_share_the_cache_safely(counting: Counting, alice_key: str) -> None:
    cache = CachingDataKeys(counting, CacheLimits(max_messages=1000))
    seen: list[DataKey] = []
    lock = threading.Lock()

    def work() -> None:
        got = [cache.generate_data_key_for(alice_key, CTX, 1) for _ in range(250)]
        with lock:
            seen.extend(got)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    per_key: dict[bytes, int] = {}
    for key in seen:
        per_key[key.wrapped] = per_key.get(key.wrapped, 0) + 1
    assert len(seen) == 1000 and max(per_key.values()) <= 1000
    assert counting.generated == len(per_key) <= 4
    stats = cache.stats
    assert stats.encrypt_hits + stats.encrypt_misses == 1000


def test_limits_are_checked_and_secrets_stay_hidden(counting: Counting, alice_key: str) -> None:
    for bad in (
        {"max_age_s": 0},
        {"max_messages": 0},
        {"max_messages": (1 << 32) + 1},
        {"max_bytes": 0},
        {"capacity": 0},
    ):
        with pytest.raises(ValidationError):
            CacheLimits(**bad)
    cache = CachingDataKeys(counting)
    made = cache.generate_data_key_for(alice_key, CTX, 1)
    assert made.plaintext.hex() not in repr(cache) and str(made.plaintext) not in repr(cache)
    with pytest.raises(TypeError):
        pickle.dumps(cache)
