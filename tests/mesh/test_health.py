"""``strongroom mesh healthcheck``: the console script against agents that serve or do not."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from strongroom.mesh.agent.serve import AgentThread
from strongroom.testing.server import run_cli


def check(socket_path: Path, expect: int, timeout: float = 10.0) -> dict[str, object]:
    out = run_cli(
        "mesh", "healthcheck", "--socket", str(socket_path), "--timeout", str(timeout), "--json",
        expect=expect,
    )  # fmt: skip
    return json.loads(out)  # type: ignore[no-any-return]


def test_a_serving_agent_is_healthy_with_or_without_an_identity(
    mesh: Any, agent: AgentThread
) -> None:
    # this process has no entry: "no identity issued" still proves the agent serves
    assert check(agent.socket_path, 0) == {
        "Serving": True,
        "Detail": "serving (this process has no identity of its own)",
    }
    mesh.registry.register("spiffe://example.org/probe", [f"unix:uid:{os.getuid()}"])
    assert check(agent.socket_path, 0)["Detail"] == "serving (1 trust bundle(s))"
    text = run_cli("mesh", "healthcheck", "--socket", str(agent.socket_path))
    assert text.startswith("serving:")


def test_no_agent_or_something_else_is_not_serving(socket_dir: Path) -> None:
    missing = check(socket_dir / "none.sock", 1)
    assert missing["Serving"] is False and "no socket" in str(missing["Detail"])
    # a unix socket nobody answers on: not a Workload API
    path = socket_dir / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(path))
        mute.listen()
        result = check(path, 1, timeout=0.5)
    assert result == {"Serving": False, "Detail": "no answer within 0.5 s"}


def test_an_agent_whose_key_service_is_down_is_not_serving(
    unreachable_agent: AgentThread,
) -> None:
    assert check(unreachable_agent.socket_path, 1) == {
        "Serving": False,
        "Detail": "the agent cannot reach its key service: the mesh authority is unavailable",
    }
