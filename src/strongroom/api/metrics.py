"""Prometheus metrics of the API: requests, errors and latency by operation.

The collectors are registered in the registry handed to :class:`ApiMetrics` (never the
process-global one), so several apps and tests live side by side. Label values are
bounded: operations come from the service model (anything else is ``"unknown"``), error
types from our own error classes.

Requests served on the event loop are counted once per loop iteration, not once per
request (:meth:`ApiMetrics.observe_soon`): with ``--workers N`` every increment is a locked
write to a memory-mapped file, and a loop iteration answers many requests at once under
load. A scrape flushes first, so nothing counted is missing from what it reports.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.values import MutexValue

from strongroom.metrics import LATENCY_BUCKETS

_Key = tuple[str, int, str | None]


class ApiMetrics:
    """The API's collectors in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "strongroom_api_requests",
            "API requests served, by operation and HTTP status.",
            ("operation", "status"),
            registry=registry,
        )
        self.errors = Counter(
            "strongroom_api_errors",
            "API requests answered with an error, by operation and AWS error type.",
            ("operation", "error"),
            registry=registry,
        )
        self.latency = Histogram(
            "strongroom_api_request_duration_seconds",
            "Time from the request's arrival to its response, by operation.",
            ("operation",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Label values are bounded (see the module docstring), and so is this memo.
        self._children: dict[_Key, tuple[Any, Any, Any]] = {}
        self._values: dict[_Key, tuple[Any, ...]] = {}
        # appended to by the loop and by pool threads alike: deque appends and pops are atomic
        self._pending: deque[tuple[_Key, float]] = deque()
        self._flush_scheduled = False

    def _children_of(self, key: _Key) -> tuple[Any, Any, Any]:
        # ``labels()`` validates and looks the child up on every call: keep the children.
        children = self._children.get(key)
        if children is None:
            operation, status, error = key
            children = (
                self.requests.labels(operation, str(status)),
                None if error is None else self.errors.labels(operation, error),
                self.latency.labels(operation),
            )
            self._children[key] = children
        return children

    def observe(self, operation: str, status: int, error: str | None, seconds: float) -> None:
        """Count one finished request now."""
        key = (operation, status, error)
        values = self._values.get(key)
        if values is None:
            values = self._values_of(key)
        if not values:  # not prometheus_client's usual layout: through its methods
            requests, errors, latency = self._children_of(key)
            requests.inc()
            if errors is not None:
                errors.inc()
            latency.observe(seconds)
            return
        request_count, error_count, total, buckets, bounds = values
        index = bisect_left(bounds, seconds)  # the first bound >= value, as observe finds it
        bucket = buckets[index] if index < len(buckets) else None
        if type(total) is MutexValue:
            # MutexValue.inc is ``with self._lock: self._value += amount``: the same, without
            # a Python frame and a ``with`` per cell (a third of this method's cost each).
            # Written out per cell on purpose: a loop over the cells measured +700 to +2,100
            # instructions per Decrypt (0.4-1.2%, bench/kms_instructions.py).
            lock = request_count._lock
            lock.acquire()
            request_count._value += 1
            lock.release()
            if error_count is not None:
                lock = error_count._lock
                lock.acquire()
                error_count._value += 1
                lock.release()
            lock = total._lock
            lock.acquire()
            total._value += seconds
            lock.release()
            if bucket is not None:
                lock = bucket._lock
                lock.acquire()
                bucket._value += 1
                lock.release()
            return
        request_count.inc(1)
        if error_count is not None:
            error_count.inc(1)
        total.inc(seconds)
        if bucket is not None:
            bucket.inc(1)

    def _values_of(self, key: _Key) -> tuple[Any, ...]:
        """The value cells :meth:`observe` increments for ``key`` (empty if not found).

        What ``inc``/``observe`` of the children do, less their checks (a labelled child
        is always observable; the amounts are never negative) and their frames. The cells
        are all of one class: :meth:`observe` takes a :class:`MutexValue`'s lock itself.
        """
        requests, errors, latency = self._children_of(key)
        request_count = getattr(requests, "_value", None)
        error_count = None if errors is None else getattr(errors, "_value", None)
        total = getattr(latency, "_sum", None)
        buckets = getattr(latency, "_buckets", None)
        bounds = getattr(latency, "_upper_bounds", None)
        values: tuple[Any, ...] = (request_count, error_count, total, buckets, bounds)
        if None in (request_count, total, buckets, bounds) or (
            errors is not None and error_count is None
        ):
            values = ()
        elif type(total) is MutexValue:
            cells = [request_count, total, error_count, *(buckets or ())]
            if not all(
                cell is None or (type(cell) is MutexValue and hasattr(cell, "_lock"))
                for cell in cells
            ):
                values = ()  # not all alike: observe would take a lock they lack
        self._values[key] = values
        return values

    def observe_soon(self, operation: str, status: int, error: str | None, seconds: float) -> None:
        """Count one finished request at the end of this event-loop iteration.

        Off an event loop (a pool thread, a test) it is counted at once, unless a flush is
        scheduled already (then it joins that one).
        """
        if not self._flush_scheduled:
            # asyncio.get_running_loop() raises off a loop: an exception per request
            loop = asyncio._get_running_loop()
            if loop is None:
                self.observe(operation, status, error, seconds)
                return
            self._flush_scheduled = True
            loop.call_soon(self.flush)  # runs on this thread, after the append below
        self._pending.append(((operation, status, error), seconds))

    def flush(self) -> None:
        """Count every request :meth:`observe_soon` holds, one increment per series."""
        self._flush_scheduled = False  # first: what comes in during the flush schedules anew
        pending = self._pending
        grouped: dict[_Key, list[float]] = {}
        while pending:
            key, seconds = pending.popleft()
            found = grouped.get(key)
            if found is None:
                grouped[key] = [seconds]
            else:
                found.append(seconds)
        for key, latencies in grouped.items():
            requests, errors, latency = self._children_of(key)
            requests.inc(len(latencies))
            if errors is not None:
                errors.inc(len(latencies))
            _observe_all(latency, latencies)

    def render(self) -> bytes:
        """Return the registry in the Prometheus text format."""
        self.flush()
        return generate_latest(self.registry)


def _observe_all(histogram: Any, values: list[float]) -> None:
    """``histogram.observe`` of each value, with one increment per bucket and one of the sum.

    Reads the child's bucket bounds and values (prometheus_client's layout since 0.4);
    observes one by one if they are not there.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(values) == 1:
        for value in values:
            histogram.observe(value)
        return
    counts: dict[int, int] = {}
    for value in values:
        index = bisect_left(bounds, value)  # the first bound >= value, as observe finds it
        counts[index] = counts.get(index, 0) + 1
    total.inc(sum(values))
    for index, count in counts.items():
        if index < len(buckets):
            buckets[index].inc(count)
