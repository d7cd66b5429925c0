"""The Workload API socket under connections that never call: capped, and cut when idle.

Bounded in count (20 connections, a cap of 5) and in time (an idle deadline of 0.5 s);
a real Workload API call still answers while they are open and after.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from strongroom.mesh.agent.limits import AgentLimits
from strongroom.mesh.agent.serve import AgentThread
from strongroom.mesh.agent.workload_api import WorkloadApi

from .test_workload_api import call_ok

PREFACE_HALF = b"PRI * HTTP/2.0\r\n"


def _closed(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_the_agent_caps_connections_and_cuts_idle_ones(mesh: Any, socket_dir: Path) -> None:
    path = socket_dir / "agent.sock"
    api = WorkloadApi(mesh.ca, mesh.registry, mesh.scheduler)
    limits = AgentLimits(max_connections=5, idle_seconds=0.5)
    with AgentThread(api, path, limits):
        socks = []
        for i in range(20):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(path))
            if i % 2:
                sock.sendall(PREFACE_HALF)  # half a preface, then nothing
            socks.append(sock)
        try:
            started = time.monotonic()
            closed = [_closed(s, 0.2) for s in socks[5:]]
            assert all(closed)  # over the cap: closed at once
            assert all(_closed(s, 3.0) for s in socks[:5])  # idle: cut after 0.5 s
            assert time.monotonic() - started < 5.0
            assert call_ok(path)  # a real call answers afterwards
        finally:
            for sock in socks:
                sock.close()
