"""What the Workload API agent counts, and its Prometheus metrics.

``strongroom mesh agent --metrics-port PORT`` serves them on ``127.0.0.1:PORT/metrics``:

=============================================  =======  =====================================
name                                           type     meaning
=============================================  =======  =====================================
``strongroom_mesh_agent_calls_total``          counter  finished calls, by ``method``, ``code``
``strongroom_mesh_agent_streams``              gauge    calls open now (streams), by ``method``
``strongroom_mesh_agent_x509_svids_total``     counter  X.509-SVIDs handed to workloads
``strongroom_mesh_agent_jwt_svids_total``      counter  JWT-SVIDs handed to workloads
=============================================  =======  =====================================

``code`` is the gRPC status a call ended with (``OK``, ``PERMISSION_DENIED`` for a caller
with no identity, ``INVALID_ARGUMENT``, ``UNAVAILABLE`` when the key service cannot be
reached, ``CANCELLED`` when the workload hung up a stream...). Counts change on the event
loop; a scrape reads them from its own thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from grpclib.exceptions import GRPCError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "strongroom_mesh_agent_"
S = TypeVar("S", bound="HasAgentStats")


@dataclass(slots=True)
class AgentStats:
    """Counters of one Workload API."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    open: Counter[str] = field(default_factory=Counter)
    x509_svids: int = 0
    jwt_svids: int = 0


class HasAgentStats:
    """A Workload API with :class:`AgentStats` (what :func:`counted` needs)."""

    stats: AgentStats


def counted(
    method: Callable[[S, Any], Coroutine[Any, Any, None]],
) -> Callable[[S, Any], Coroutine[Any, Any, None]]:
    """Count a gRPC method's calls: open while running, then by the status it ended with."""
    name = method.__name__

    @functools.wraps(method)
    async def run(self: S, stream: Any) -> None:
        stats = self.stats
        stats.open[name] += 1
        code = "UNKNOWN"
        try:
            await method(self, stream)
            code = "OK"
        except GRPCError as exc:
            code = exc.status.name
            raise
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        finally:
            stats.open[name] -= 1
            stats.calls[name, code] += 1

    return run


class AgentCollector(Collector):
    """Prometheus view of :class:`AgentStats`."""

    def __init__(self, stats: AgentStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        """The counts as they are now."""
        stats = self._stats
        calls = CounterMetricFamily(
            PREFIX + "calls", "Finished Workload API calls.", labels=["method", "code"]
        )
        for (method, code), count in sorted(stats.calls.copy().items()):
            calls.add_metric([method, code], count)
        yield calls
        streams = GaugeMetricFamily(
            PREFIX + "streams", "Workload API calls open now.", labels=["method"]
        )
        for method, count in sorted(stats.open.copy().items()):
            streams.add_metric([method], count)
        yield streams
        yield CounterMetricFamily(
            PREFIX + "x509_svids", "X.509-SVIDs handed to workloads.", value=stats.x509_svids
        )
        yield CounterMetricFamily(
            PREFIX + "jwt_svids", "JWT-SVIDs handed to workloads.", value=stats.jwt_svids
        )
