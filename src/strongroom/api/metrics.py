"""Prometheus metrics of the API: requests, errors and latency by operation.

The collectors are registered in the registry handed to :class:`ApiMetrics` (never the
process-global one), so several apps and tests live side by side. Label values are
bounded: operations come from the service model (anything else is ``"unknown"``), error
types from our own error classes.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from strongroom.metrics import LATENCY_BUCKETS


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
        self._children: dict[tuple[str, int, str | None], tuple[Any, Any, Any]] = {}

    def observe(self, operation: str, status: int, error: str | None, seconds: float) -> None:
        """Count one finished request."""
        # ``labels()`` validates and looks the child up on every call: keep the children.
        children = self._children.get((operation, status, error))
        if children is None:
            children = (
                self.requests.labels(operation, str(status)),
                None if error is None else self.errors.labels(operation, error),
                self.latency.labels(operation),
            )
            self._children[(operation, status, error)] = children
        requests, errors, latency = children
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def render(self) -> bytes:
        """Return the registry in the Prometheus text format."""
        return generate_latest(self.registry)
