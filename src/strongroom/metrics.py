"""What the Prometheus metrics of Strongroom's processes have in common.

Each part keeps its collectors in a registry handed to it (never the process-global one):
:class:`strongroom.api.metrics.ApiMetrics`, :class:`strongroom.k8s.metrics.PluginMetrics`,
:class:`strongroom.server.metrics.ServerMetrics`,
:class:`strongroom.mesh.proxy.metrics.ProxyCollector`. Processes that are not HTTP servers
(the KMS plugin, the mesh sidecar) serve theirs with :class:`MetricsEndpoint`
(``--metrics-port``).
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

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
"""Histogram buckets of request latency, in seconds: a Decrypt is expected well under 10 ms."""


class MetricsEndpoint:
    """``GET /metrics`` of a registry on ``host:port`` (a daemon thread), until closed."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
        from prometheus_client import start_http_server

        self._server: Any
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_collector(collector: Collector, port: int) -> MetricsEndpoint:
    """Serve one collector, in a registry of its own, on ``127.0.0.1:PORT/metrics``."""
    registry = CollectorRegistry()
    registry.register(collector)
    return MetricsEndpoint(registry, port)
