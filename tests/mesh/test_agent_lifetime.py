"""An agent the tests start ends with the process that started it, however that one ends.

A test run killed on a timeout (SIGTERM) or by SIGKILL runs no ``finally``: agents started
with :func:`strongroom.testing.children.die_with_parent` are signalled by the kernel.
Here a parent process starts a real ``strongroom mesh agent`` that way and is killed; the
agent must be gone (waited on through a pidfd, since it is not this process's child).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.testing.console import console_script, run_cli

PARENT = """
import subprocess, sys
from strongroom.testing.children import die_with_parent

log, argv = sys.argv[1], sys.argv[2:]
with open(log, "wb") as out:
    agent = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=die_with_parent()
    )
print(agent.pid, flush=True)
sys.stdin.read()  # until the test kills this process (it never closes our stdin)
"""


def _ended_within(pidfd: int, seconds: float) -> bool:
    """Wait for the process behind ``pidfd`` to end (it becomes readable then)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(seconds * 1000))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_an_agent_ends_with_the_process_that_started_it(
    tmp_path: Path, socket_dir: Path, sig: signal.Signals
) -> None:
    data = str(tmp_path / "data")
    run_cli("init", "--data-dir", data)
    sock = socket_dir / "agent.sock"
    log = tmp_path / "agent.log"
    agent_argv = [
        console_script(), "mesh", "agent", "--data-dir", data,
        "--socket", str(sock), "--trust-domain", "example.org",
    ]  # fmt: skip
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(log), *agent_argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with parent:
        assert parent.stdout is not None
        agent_pid = int(parent.stdout.readline())
        pidfd = os.pidfd_open(agent_pid)
        try:
            serving = subprocess.run(
                [console_script(), "mesh", "healthcheck", "--socket", str(sock), "--wait", "60"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert serving.returncode == 0, (serving.stdout, log.read_text())
            assert not _ended_within(pidfd, 0)  # the agent runs, its parent too
            parent.send_signal(sig)
            assert parent.wait(30) == -sig
            assert _ended_within(pidfd, 30), "the agent outlived its parent"
        finally:
            if not _ended_within(pidfd, 0):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)
