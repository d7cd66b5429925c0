"""Prometheus metrics of the API: requests, errors and latency by operation.

The collectors are registered in the registry handed to :class:`ApiMetrics` (never the
process-global one), so several apps and tests live side by side. Label values are
bounded: operations come from the service model (anything else is ``"unknown"``), error
types from our own error classes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

# Latency buckets in seconds: a Decrypt is expected well under 10 ms.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


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

    def observe(self, operation: str, status: int, error: str | None, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(operation, str(status)).inc()
        if error is not None:
            self.errors.labels(operation, error).inc()
        self.latency.labels(operation).observe(seconds)

    def render(self) -> bytes:
        """Return the registry in the Prometheus text format."""
        return generate_latest(self.registry)
