"""Requests counted once per event-loop iteration report exactly what counting each does."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from strongroom.api.metrics import ApiMetrics

SAMPLES = [
    ("Decrypt", 200, None, 0.0004),
    ("Decrypt", 200, None, 0.003),
    ("Decrypt", 400, "InvalidCiphertextException", 0.0011),
    ("Encrypt", 200, None, 0.25),
    ("Decrypt", 200, None, 0.0004),
    ("Encrypt", 200, None, 99.0),  # past the last finite bucket
]


def _exposition(metrics: ApiMetrics) -> list[str]:
    # the _created timestamps differ between registries; everything else must match
    return [line for line in metrics.render().decode().splitlines() if "_created" not in line]


def test_counted_per_loop_iteration_equals_counted_per_request() -> None:
    direct = ApiMetrics(CollectorRegistry())
    for sample in SAMPLES:
        direct.observe(*sample)
    batched = ApiMetrics(CollectorRegistry())

    async def serve() -> None:
        for sample in SAMPLES:
            batched.observe_soon(*sample)
        assert batched._pending  # held for the end of the loop iteration
        await asyncio.sleep(0)  # the loop's next iteration counts them
        assert not batched._pending

    asyncio.run(serve())
    assert _exposition(batched) == _exposition(direct)
    assert 'strongroom_api_requests_total{operation="Decrypt",status="200"} 3.0' in (
        _exposition(batched)
    )


def test_a_scrape_counts_what_waits_for_the_loop() -> None:
    metrics = ApiMetrics(CollectorRegistry())

    async def serve() -> str:
        metrics.observe_soon("Decrypt", 200, None, 0.001)
        return metrics.render().decode()  # before the loop got round to it

    assert 'strongroom_api_requests_total{operation="Decrypt",status="200"} 1.0' in asyncio.run(
        serve()
    )
