"""The KMS v2 plugin's socket under connections that never call: capped and cut.

Bounded in count (20 connections, a cap of 5) and in time (a handshake deadline of 1 s);
the plugin still answers a real Status call afterwards.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
from prometheus_client import CollectorRegistry

from strongroom.k8s.backend import InProcessBackend, plugin_caller
from strongroom.k8s.metrics import PluginMetrics
from strongroom.k8s.plugin import KmsPlugin
from strongroom.k8s.proto import api_pb2, api_pb2_grpc
from strongroom.k8s.retry import RetryPolicy
from strongroom.k8s.server import KmsServicer, PluginServer, SocketLimits
from strongroom.kms import KeyService
from strongroom.testing.silent_clients import closed_within, silent_connections

from .conftest import ALIAS


def test_the_plugin_caps_connections_and_cuts_silent_ones(
    service: KeyService, key_arn: str, socket_dir: Path
) -> None:
    metrics = PluginMetrics(CollectorRegistry())
    plugin = KmsPlugin(
        InProcessBackend(service, plugin_caller(service, "alice")),
        ALIAS,
        retry=RetryPolicy(attempts=1, base_delay=0.0),
        metrics=metrics,
    )
    limits = SocketLimits(max_connections=5, handshake_timeout_s=1.0)
    server = PluginServer(
        KmsServicer(plugin, metrics), socket_dir / "limits.sock", workers=4, limits=limits
    )
    server.start()
    socks: list[socket.socket] = []
    try:
        socks = silent_connections(server.socket_path, 20)
        started = time.monotonic()
        assert sum(closed_within(s, 0.2) for s in socks) >= 15  # over the cap: closed at once
        assert all(closed_within(s, 5.0) for s in socks)  # the rest: cut at the deadline
        assert time.monotonic() - started < 8.0
        with grpc.insecure_channel(server.target) as channel:
            stub = api_pb2_grpc.KeyManagementServiceStub(channel)  # type: ignore[no-untyped-call]
            reply = stub.Status(api_pb2.StatusRequest(), timeout=10)
        assert reply.healthz == "ok"
    finally:
        for sock in socks:
            sock.close()
        server.stop(grace=1.0)
