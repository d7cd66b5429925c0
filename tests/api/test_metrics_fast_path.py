"""``ApiMetrics.observe`` increments prometheus_client's value cells itself, with this version.

The fast path reads private names of prometheus_client (a child's ``_value``, a histogram's
``_sum``, ``_buckets`` and ``_upper_bounds``, a :class:`MutexValue`'s ``_lock`` and
``_value``) and falls back to the public ``inc``/``observe`` where it does not find them.
A release that renamed one would keep the counts right and quietly cost every request
those calls again: these tests fail instead, so the fast path is kept in step on upgrade.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import values as prometheus_values
from prometheus_client.values import MutexValue

from strongroom.api.metrics import ApiMetrics

SUCCESS = ("Decrypt", 200, None)
ERROR = ("Decrypt", 400, "InvalidCiphertextException")


def _sample(metrics: ApiMetrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_single_process_cells_are_mutex_values() -> None:
    """In one process (no ``PROMETHEUS_MULTIPROC_DIR``) prometheus_client's cells are the
    class the fast path is written for."""
    assert prometheus_values.ValueClass is MutexValue


@pytest.mark.parametrize("key", [SUCCESS, ERROR], ids=["success", "error"])
def test_the_fast_path_finds_every_cell(key: tuple[str, int, str | None]) -> None:
    metrics = ApiMetrics(CollectorRegistry())
    metrics.observe(*key, 0.002)
    values = metrics._values[key]
    assert values, "prometheus_client's layout was not found: observe fell back to inc()"
    request_count, error_count, total, buckets, bounds = values
    cells = [request_count, total, *buckets] + ([error_count] if key[2] else [])
    assert all(type(cell) is MutexValue for cell in cells)
    assert all(hasattr(cell, "_lock") and hasattr(cell, "_value") for cell in cells)
    assert list(bounds) == sorted(bounds) and len(bounds) == len(buckets)


def test_the_fast_path_never_calls_inc(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``MutexValue.inc`` out of reach, requests are still counted: by the fast path."""

    def refuse(self: MutexValue, amount: float) -> None:
        raise AssertionError("MutexValue.inc called: the fast path was not taken")

    metrics = ApiMetrics(CollectorRegistry())
    metrics.observe(*SUCCESS, 0.002)  # labels() and _values_of() may use the public API
    metrics.observe(*ERROR, 0.002)
    monkeypatch.setattr(MutexValue, "inc", refuse)
    metrics.observe(*SUCCESS, 0.0004)
    metrics.observe(*ERROR, 99.0)  # past the last finite bucket
    monkeypatch.undo()
    requests = "strongroom_api_requests_total"
    assert _sample(metrics, requests, {"operation": "Decrypt", "status": "200"}) == 2.0
    assert _sample(metrics, requests, {"operation": "Decrypt", "status": "400"}) == 2.0
    errors = {"operation": "Decrypt", "error": "InvalidCiphertextException"}
    assert _sample(metrics, "strongroom_api_errors_total", errors) == 2.0
    latency = "strongroom_api_request_duration_seconds"
    assert _sample(metrics, f"{latency}_count", {"operation": "Decrypt"}) == 4.0
    assert _sample(metrics, f"{latency}_sum", {"operation": "Decrypt"}) == pytest.approx(99.0044)
    infinite = {"operation": "Decrypt", "le": "+Inf"}
    assert _sample(metrics, f"{latency}_bucket", infinite) == 4.0
