"""A server process's runtime in-process: maintenance, audit batches, readiness, key cache."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from strongroom.errors import NotFoundError
from strongroom.kms import KeyService, ManualClock
from strongroom.rootkey import LocalRootOfTrust
from strongroom.server import CachedBackend, Runtime, ServerSettings
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller

DAY = 86400.0


@pytest.fixture
def runtime(tmp_path: Path) -> Any:
    clock = ManualClock()
    service = KeyService(
        SqliteStore(tmp_path / "store.db"), LocalRootOfTrust.create(tmp_path / "k"), clock
    )
    settings = ServerSettings(
        data_dir=tmp_path, store_url=f"sqlite:///{tmp_path}/store.db", root_spec="local"
    )
    registry = CollectorRegistry()
    rt = Runtime(settings, service, registry=registry)
    yield rt, service, clock, registry
    rt.close()


def test_maintenance_shreds_keys_past_deletion(runtime: Any) -> None:
    rt, service, clock, _ = runtime
    caller = tenant_caller(service, "acme")
    key_id = service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
    service.call(caller, "ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": 7})
    rt.maintain()
    assert service.call(caller, "DescribeKey", {"KeyId": key_id})["KeyMetadata"]["KeyState"] == (
        "PendingDeletion"
    )
    clock.advance(8 * DAY)
    rt.maintain()
    with pytest.raises(NotFoundError):
        service.call(caller, "DescribeKey", {"KeyId": key_id})
    deleted = service.store.read(lambda tx: tx.get(caller.tenant, "key", key_id))
    assert deleted is None


def test_audit_flush_counts_events_and_batches(runtime: Any) -> None:
    rt, service, _, registry = runtime
    caller = tenant_caller(service, "acme")
    rt.flush_audit()
    for _ in range(25):
        service.call(caller, "GenerateRandom", {"NumberOfBytes": 8})
    assert rt.flush_audit() == 25
    assert rt.flush_audit() == 0
    text = generate_latest(registry).decode()
    assert "strongroom_audit_events_written_total 27.0" in text  # tenant, access key, 25
    assert "strongroom_audit_batches_written_total 2.0" in text


def test_readiness_reads_the_store_and_round_trips_the_root(runtime: Any) -> None:
    rt, _, _, _ = runtime
    assert rt.ready() is True


def test_access_keys_are_reused_for_their_ttl_then_looked_up_again(runtime: Any) -> None:
    _, service, _, _ = runtime
    tenant = service.create_tenant("acme")
    principal, _ = service.create_access_key(tenant.account_id)
    now = [0.0]
    backend = CachedBackend(service, ttl_seconds=5.0, clock=lambda: now[0])
    found = backend.lookup_access_key(principal.access_key_id)
    assert found is not None
    service.delete_access_key(principal.access_key_id)
    now[0] = 4.9
    assert backend.lookup_access_key(principal.access_key_id) is found
    now[0] = 5.1
    assert backend.lookup_access_key(principal.access_key_id) is None
    assert backend.lookup_access_key("AKIANOSUCHKEY0000000") is None


def test_lifespan_starts_and_stops_background_threads(runtime: Any) -> None:
    rt, service, _, _ = runtime
    sent: list[str] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            assert {t.name for t in rt._threads} == {
                "strongroom-audit",
                "strongroom-audit-watch",
                "strongroom-maintenance",
            }
            service.audit.record({"operation": "Probe"})

    asyncio.run(rt({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not any(t.is_alive() for t in rt._threads)
    assert service.audit.pending() == 0  # flushed on the way out
