"""The Workload API socket under connections that never call: capped, and cut when idle.

Bounded in count (20 connections, a cap of 5) and in time (an idle deadline of 0.5 s);
a real Workload API call still answers while they are open and after.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from strongroom.mesh.agent.limits import AgentLimits
from strongroom.mesh.agent.serve import AgentThread
from strongroom.mesh.agent.workload_api import WorkloadApi
from strongroom.testing.silent_clients import closed_within, silent_connections

from .test_workload_api import call_ok

PREFACE_HALF = b"PRI * HTTP/2.0\r\n"


def test_the_agent_caps_connections_and_cuts_idle_ones(mesh: Any, socket_dir: Path) -> None:
    path = socket_dir / "agent.sock"
    api = WorkloadApi(mesh.ca, mesh.registry, mesh.scheduler)
    limits = AgentLimits(max_connections=5, idle_seconds=0.5)
    with AgentThread(api, path, limits):
        socks = silent_connections(path, 20, half_sent=PREFACE_HALF)  # odd ones: half a preface
        try:
            started = time.monotonic()
            closed = [closed_within(s, 0.2) for s in socks[5:]]
            assert all(closed)  # over the cap: closed at once
            assert all(closed_within(s, 3.0) for s in socks[:5])  # idle: cut after 0.5 s
            assert time.monotonic() - started < 5.0
            assert call_ok(path)  # a real call answers afterwards
        finally:
            for sock in socks:
                sock.close()
