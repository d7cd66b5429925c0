"""Metrics of the server process itself (audit batches, maintenance), and multi-process export.

With ``--workers N`` every worker counts in shared memory-mapped files (prometheus_client's
multi-process mode: the supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a private
directory before it starts the workers), and ``/metrics`` on any worker reports the sum
over all of them, so counters never go backwards between scrapes that land on different
workers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServerMetrics:
    """Counters of the audit flusher and the maintenance loop."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.audit_events = Counter(
            "strongroom_audit_events_written",
            "Audit events appended to the hash chain.",
            registry=registry,
        )
        self.audit_batches = Counter(
            "strongroom_audit_batches_written",
            "Flushes that appended at least one audit event (one transaction each).",
            registry=registry,
        )
        self.audit_failures = Counter(
            "strongroom_audit_flush_failures",
            "Audit flushes that failed (their events stay queued and are retried).",
            registry=registry,
        )
        self.audit_backlog = Gauge(
            "strongroom_audit_backlog",
            "Audit events waiting to be written (summed over workers).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.audit_refusing = Gauge(
            "strongroom_audit_refusing",
            "Workers refusing operations because the audit log cannot be written (fail-closed).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.audit_refused = Counter(
            "strongroom_audit_refused_calls",
            "Operations refused because the audit log could not be written.",
            registry=registry,
        )
        self.audit_dropped = Counter(
            "strongroom_audit_events_dropped",
            "Audit events dropped with --audit-failure open because the backlog was full.",
            registry=registry,
        )
        self.maintenance_failures = Counter(
            "strongroom_maintenance_failures",
            "Maintenance rounds (rotation, deletion, certificate renewal) that failed.",
            registry=registry,
        )


def multiprocess_exposition() -> CollectorRegistry | None:
    """A registry summing every worker's metrics, in multi-process mode; else ``None``."""
    if not os.environ.get(MULTIPROC_ENV):
        return None
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)
