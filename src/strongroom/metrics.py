"""What the Prometheus metrics of Strongroom's processes have in common.

Each part keeps its collectors in a registry handed to it (never the process-global one):
:class:`strongroom.api.metrics.ApiMetrics`, :class:`strongroom.k8s.metrics.PluginMetrics`,
:class:`strongroom.server.metrics.ServerMetrics`.
"""

from __future__ import annotations

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
