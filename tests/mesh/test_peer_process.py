"""Exec-and-relay against workload attestation: real processes, a real exec, a real socket.

The attacker connects to the agent's socket, forks, and the parent execs another binary
(same pid, new /proc/PID/exe) while the child keeps the inherited socket to relay requests.
Whether the exec comes before the agent attests the connection or after, the agent refuses.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.errors import AccessDeniedError
from strongroom.mesh.agent.attest import peer_credentials
from strongroom.mesh.agent.peer_process import bind_peer, process_identity

TARGET = shutil.which("sleep") or "/bin/sleep"
ATTACKER = textwrap.dedent(
    """
    import os, socket, sys
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.set_inheritable(True)
    print("connected", flush=True)
    sys.stdin.readline()  # the test says when to fork and exec
    if os.fork() == 0:
        sys.stdin.read()  # the relay: keeps the inherited socket open until told to stop
        os._exit(0)
    os.execv(sys.argv[2], [sys.argv[2], "300"])
    """
)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    yield server, path
    server.close()


def _attacker(path: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ATTACKER, path, TARGET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"connected\n"
    return proc


def _exec_now(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while True:  # wait for a condition: the parent runs the target binary
        identity = process_identity(proc.pid)
        if identity is not None and identity.path == os.path.realpath(TARGET):
            return
        assert time.monotonic() < deadline, "the attacker did not exec"
        time.sleep(0.01)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with proc:  # on the way out: close its pipes, wait for it
        os.killpg(proc.pid, signal.SIGKILL)


def test_exec_before_attestation_is_refused_as_a_shared_socket(
    listener: tuple[socket.socket, str],
) -> None:
    server, path = listener
    proc = _attacker(path)
    try:
        conn, _ = server.accept()
        with conn:
            _exec_now(proc)  # connected, forked, execed: all before the agent looks
            creds = peer_credentials(conn)
            assert creds.pid == proc.pid
            with pytest.raises(AccessDeniedError, match="shared with another process"):
                bind_peer(conn, creds.pid)
    finally:
        _stop(proc)


def test_exec_after_attestation_ends_the_connection(
    listener: tuple[socket.socket, str],
) -> None:
    server, path = listener
    proc = _attacker(path)
    try:
        conn, _ = server.accept()
        with conn:
            bound = bind_peer(conn, peer_credentials(conn).pid)
            assert bound.path_trusted  # one process, unchanged: its path may be attested
            bound.check_unchanged()
            _exec_now(proc)
            with pytest.raises(AccessDeniedError, match="changed its executable"):
                bound.check_unchanged()
    finally:
        _stop(proc)


def test_a_plain_client_is_attested_with_its_path(listener: tuple[socket.socket, str]) -> None:
    server, path = listener
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    conn, _ = server.accept()
    with conn, client:
        bound = bind_peer(conn, peer_credentials(conn).pid)
        assert bound.pid == os.getpid() and bound.path_trusted
        assert bound.identity is not None
        assert bound.identity.path == os.path.realpath(f"/proc/{os.getpid()}/exe")
        bound.check_unchanged()
