"""Hot records in use are read again in the background, and the staleness bound holds.

A record the hot operations use is read again off the request path once it is past half
its ``key_record_ttl_s`` (1 s), so a busy key's record never expires under its requests
(no request waits for the re-read), while a change made by another process is still seen
within the TTL, as without the refresh (tests/kms/test_hot_path.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.errors import AccessDeniedError, DisabledError, InvalidStateError
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.ports import StoreTx
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller

from .policy_support import deny_decrypt

TTL = 1.0  # key_record_ttl_s, the default


def settle(service: KeyService) -> None:
    """Wait until the background reads the service was asked for are done."""
    assert service.kernel._hot.wait_refreshed(10.0)


def count_reads(service: KeyService, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the store's read transactions: on this (the request) thread and on others."""
    inner = service.store.inner  # type: ignore[attr-defined]
    real_read = inner.read
    counts = {"request": 0, "background": 0}
    me = threading.current_thread()

    def counted(fn: Callable[[StoreTx], object]) -> object:
        counts["request" if threading.current_thread() is me else "background"] += 1
        return real_read(fn)

    monkeypatch.setattr(inner, "read", counted)
    return counts


def setup_key(first: KeyService, second: KeyService) -> tuple[Caller, str, bytes]:
    alice = tenant_caller(first, "alice")
    key = first.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
    blob = first.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"p"})["CiphertextBlob"]
    assert second.call(alice, "Decrypt", {"CiphertextBlob": blob})["Plaintext"] == b"p"
    return alice, key, blob


def test_requests_no_longer_pay_the_re_read(
    two_processes: tuple[KeyService, KeyService, ManualClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, clock = two_processes
    alice, key, blob = setup_key(first, second)
    counts = count_reads(second, monkeypatch)
    for _ in range(24):  # 6 s of a busy key: six TTLs
        clock.advance(0.25 * TTL)
        assert second.call(alice, "Decrypt", {"CiphertextBlob": blob})["Plaintext"] == b"p"
        second.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"q"})
        settle(second)
    assert counts["request"] == 0
    assert 6 <= counts["background"] <= 12  # about two per TTL


def test_a_record_nobody_uses_expires_as_before(
    two_processes: tuple[KeyService, KeyService, ManualClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, clock = two_processes
    alice, _, blob = setup_key(first, second)
    counts = count_reads(second, monkeypatch)
    clock.advance(TTL)
    second.call(alice, "Decrypt", {"CiphertextBlob": blob})
    settle(second)
    assert counts == {"request": 1, "background": 0}


def _disable(service: KeyService, alice: Caller, key: str) -> None:
    service.call(alice, "DisableKey", {"KeyId": key})


def _schedule_deletion(service: KeyService, alice: Caller, key: str) -> None:
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})


CHANGES: list[tuple[Callable[[KeyService, Caller, str], None], type[Exception]]] = [
    (_disable, DisabledError),
    (deny_decrypt, AccessDeniedError),
    (_schedule_deletion, InvalidStateError),
]


@pytest.mark.parametrize(("change", "error"), CHANGES, ids=["disable", "policy", "deletion"])
def test_a_change_elsewhere_is_seen_within_the_ttl_while_refreshing(
    two_processes: tuple[KeyService, KeyService, ManualClock],
    change: Callable[[KeyService, Caller, str], None],
    error: type[Exception],
) -> None:
    first, second, clock = two_processes
    alice, key, blob = setup_key(first, second)

    def decrypt() -> bytes:
        plaintext: bytes = second.call(alice, "Decrypt", {"CiphertextBlob": blob})["Plaintext"]
        return plaintext

    # (steps that are exact in binary: the clock's sums must land on the TTL exactly)
    clock.advance(0.625 * TTL)
    assert decrypt() == b"p"  # past half its life: read again in the background
    settle(second)
    clock.advance(0.125 * TTL)
    change(first, alice, key)  # at 0.75: the copy second holds was read at 0.625
    clock.advance(0.5 * TTL)
    assert decrypt() == b"p"  # at 1.25 the copy (0.625 old, 0.5 stale) may still serve
    settle(second)  # ... and it was read again
    with pytest.raises(error):
        decrypt()


@pytest.mark.parametrize(("change", "error"), CHANGES, ids=["disable", "policy", "deletion"])
def test_the_bound_holds_when_the_refresh_cannot_run(
    two_processes: tuple[KeyService, KeyService, ManualClock],
    change: Callable[[KeyService, Caller, str], None],
    error: type[Exception],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second, clock = two_processes
    alice, key, blob = setup_key(first, second)
    inner = second.store.inner  # type: ignore[attr-defined]
    real_read = inner.read
    me = threading.current_thread()

    def failing_in_background(fn: Callable[[StoreTx], object]) -> object:
        if threading.current_thread() is not me:
            raise OSError("the store does not answer the refresher")
        return real_read(fn)

    monkeypatch.setattr(inner, "read", failing_in_background)
    clock.advance(0.125 * TTL)  # (steps exact in binary: the sum lands on the TTL exactly)
    change(first, alice, key)
    clock.advance(0.75 * TTL)  # at 0.875: the copy read at 0 still serves, a refresh fails
    assert second.call(alice, "Decrypt", {"CiphertextBlob": blob})["Plaintext"] == b"p"
    settle(second)
    clock.advance(0.125 * TTL)  # at 1.0 the copy has expired: the request reads the store
    with pytest.raises(error):
        second.call(alice, "Decrypt", {"CiphertextBlob": blob})


def test_a_write_of_this_process_is_not_undone_by_a_refresh_under_way(
    two_processes: tuple[KeyService, KeyService, ManualClock],
) -> None:
    first, second, clock = two_processes
    alice, key, blob = setup_key(first, second)
    hot = second.kernel._hot
    clock.advance(0.625 * TTL)
    generation = hot._keys.generation
    second.call(alice, "DisableKey", {"KeyId": key})  # ends every cached record at once
    # a refresh that read before the write committed must not put its copy back
    hot._keys.put((alice.tenant, key), object(), generation)  # type: ignore[arg-type]
    with pytest.raises(DisabledError):
        second.call(alice, "Decrypt", {"CiphertextBlob": blob})


def test_closing_the_service_stops_the_refresher(tmp_path: Path) -> None:
    clock = ManualClock()
    service = KeyService(
        SqliteStore(tmp_path / "s.db"), LocalRootOfTrust.create(tmp_path / "m.key"), clock
    )
    alice = tenant_caller(service, "alice")
    key = service.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
    service.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"p"})
    clock.advance(0.625 * TTL)
    service.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"p"})
    settle(service)
    thread = service.kernel._hot._refresher._thread
    assert thread is not None and thread.is_alive()
    service.close()
    assert not thread.is_alive()
