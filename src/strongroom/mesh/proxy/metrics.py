"""Prometheus metrics of the mTLS sidecar and the egress proxy, read when scraped.

``strongroom mesh proxy --metrics-port PORT`` (and ``mesh egress --metrics-port PORT``)
serve them on ``127.0.0.1:PORT/metrics``. The egress proxy's are
``strongroom_mesh_egress_tunnels_total`` (tunnels opened to verified TLS servers) and
``strongroom_mesh_egress_refused_total`` (requests refused; the reason is in the log).
Nothing is counted twice: :class:`ProxyCollector` reads the :class:`ProxyStats` the proxy
keeps anyway (plain integers, bumped on the event loop) and the current SVID, so the relay
path pays nothing for the metrics. Names (all ``strongroom_mesh_proxy_`` prefixed):

=====================================  =======  =============================================
name                                   type     meaning
=====================================  =======  =============================================
``inbound_accepted_total``             counter  callers let through an inbound listener
``inbound_denied_total``               counter  callers refused (allow-list, revocation)
``inbound_handshake_failures_total``   counter  inbound TLS handshakes that failed
``upstream_failures_total``            counter  inbound upstream connects that failed
``peer_handshakes_total``              counter  outbound mTLS handshakes, by ``resumed``
``peer_refused_total``                 counter  outbound peers refused (wrong SPIFFE ID...)
``pool_takes_total``                   counter  outbound client connections, by ``pooled``
``rotations_total``                    counter  SVID rotations taken in place
``pool_ready``                         gauge    ready outbound connections, by ``listener``
``svid_expiry_timestamp``              gauge    the current X.509-SVID's notAfter (Unix s)
=====================================  =======  =============================================
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from strongroom.mesh.proxy.egress import EgressProxy
    from strongroom.mesh.proxy.sidecar import SidecarProxy
    from strongroom.mesh.proxy.svid_source import SvidSource

PREFIX = "strongroom_mesh_proxy_"


class ProxyCollector(Collector):
    """A collector over one running :class:`~strongroom.mesh.proxy.sidecar.SidecarProxy`."""

    def __init__(self, proxy: SidecarProxy, source: SvidSource) -> None:
        self._proxy = proxy
        self._source = source

    def collect(self) -> Iterator[Metric]:
        """The metrics as they are now (called on the scrape's thread; reads only)."""
        stats = self._proxy.stats
        simple = (
            ("inbound_accepted", "Callers let through.", stats.accepted),
            ("inbound_denied", "Callers refused (allow-list, revocation).", stats.denied),
            ("inbound_handshake_failures", "Failed inbound handshakes.", stats.handshake_failures),
            ("upstream_failures", "Failed upstream connects.", stats.upstream_failures),
            ("peer_refused", "Outbound peers refused.", stats.peer_refused),
            ("rotations", "SVID rotations taken in place.", stats.rotations),
        )
        for name, text, value in simple:
            yield CounterMetricFamily(PREFIX + name, text, value=value)
        handshakes = CounterMetricFamily(
            PREFIX + "peer_handshakes", "Outbound mTLS handshakes.", labels=["resumed"]
        )
        handshakes.add_metric(["true"], stats.peer_resumed)
        handshakes.add_metric(["false"], stats.peer_handshakes - stats.peer_resumed)
        yield handshakes
        takes = CounterMetricFamily(
            PREFIX + "pool_takes",
            "Outbound client connections: paired with a ready connection or not.",
            labels=["pooled"],
        )
        takes.add_metric(["true"], stats.pool_hits)
        takes.add_metric(["false"], stats.pool_misses)
        yield takes
        ready = GaugeMetricFamily(
            PREFIX + "pool_ready", "Ready outbound connections.", labels=["listener"]
        )
        for listener in self._proxy.policy.outbound:
            ready.add_metric([listener.name], self._proxy.pool_ready(listener.name))
        yield ready
        expiry = self._source.current().svid.not_after
        yield GaugeMetricFamily(
            PREFIX + "svid_expiry_timestamp",
            "The current X.509-SVID's notAfter, Unix seconds.",
            value=expiry,
        )


class EgressCollector(Collector):
    """A collector over one running :class:`~strongroom.mesh.proxy.egress.EgressProxy`."""

    def __init__(self, egress: EgressProxy) -> None:
        self._egress = egress

    def collect(self) -> Iterator[Metric]:
        """The tunnel and refusal counts as they are now."""
        yield CounterMetricFamily(
            "strongroom_mesh_egress_tunnels",
            "Tunnels opened to verified TLS servers.",
            value=self._egress.tunnels,
        )
        yield CounterMetricFamily(
            "strongroom_mesh_egress_refused",
            "Requests refused (not allowed, not TLS, unverified upstream...).",
            value=self._egress.refused,
        )
