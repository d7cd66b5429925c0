"""Prometheus metrics of the KMS plugin: calls, their outcome and latency, retries, health.

The collectors live in the registry handed to :class:`PluginMetrics` (never the
process-global one). Label values are bounded: methods are the three RPCs, codes the gRPC
status names, operations the backend calls.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from strongroom.metrics import LATENCY_BUCKETS


class PluginMetrics:
    """The plugin's collectors in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "strongroom_k8s_plugin_requests",
            "KMS v2 calls answered, by method and gRPC status code.",
            ("method", "code"),
            registry=registry,
        )
        self.latency = Histogram(
            "strongroom_k8s_plugin_request_duration_seconds",
            "Time to answer a KMS v2 call, by method.",
            ("method",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "strongroom_k8s_plugin_backend_retries",
            "Key service calls retried after a transient failure, by operation.",
            ("operation",),
            registry=registry,
        )
        self.healthy = Gauge(
            "strongroom_k8s_plugin_healthy",
            "1 while the last Status probe's encrypt/decrypt round trip succeeded, else 0.",
            registry=registry,
        )
        self.key_changes = Counter(
            "strongroom_k8s_plugin_key_id_changes",
            "Times the key_id changed (the key was rotated or its alias moved).",
            registry=registry,
        )

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Count one answered call."""
        self.requests.labels(method, code).inc()
        self.latency.labels(method).observe(seconds)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
