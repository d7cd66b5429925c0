"""``strongroom mesh ...`` as an operator runs it: real processes, a py-spiffe workload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
from typer.testing import CliRunner, Result

from strongroom.cli.main import build_app
from strongroom.testing.children import die_with_parent

PROBE = Path(__file__).with_name("spiffe_probe.py")
WEB = "spiffe://example.org/web"


def strongroom(*args: str, expect: int = 0) -> Result:
    """Run a (short) strongroom command in this process."""
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def test_register_serve_revoke_unregister(
    tmp_path: Path, socket_dir: Path, socket_probe: Callable[..., tuple[int, dict[str, Any]]]
) -> None:
    data = str(tmp_path / "data")
    strongroom("init", "--data-dir", data)
    dd = ("--data-dir", data)
    registered = json.loads(
        strongroom(
            "mesh",
            "register",
            *dd,
            "--spiffe-id",
            WEB,
            "--selector",
            f"unix:uid:{os.getuid()}",
            "--json",
        ).stdout
    )
    assert registered["spiffe_id"] == WEB
    strongroom("mesh", "register", *dd, "--spiffe-id", WEB, "--selector", "unix:uid:x", expect=1)
    listed = json.loads(strongroom("mesh", "entries", *dd, "--json").stdout)
    assert [e["entry_id"] for e in listed] == [registered["entry_id"]]
    assert WEB in strongroom("mesh", "entries", *dd).stdout
    pem = strongroom("mesh", "bundle", *dd, "--trust-domain", "example.org").stdout
    roots = x509.load_pem_x509_certificates(pem.encode())
    spiffe = json.loads(
        strongroom(
            "mesh", "bundle", *dd, "--trust-domain", "example.org", "--format", "spiffe"
        ).stdout
    )
    assert {k["use"] for k in spiffe["keys"]} == {"x509-svid", "jwt-svid"}

    socket_path = socket_dir / "agent.sock"
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom.cli",
            "mesh",
            "agent",
            *dd,
            "--socket",
            str(socket_path),
            "--trust-domain",
            "example.org",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent(),  # gone even if this test process is killed
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            assert agent.poll() is None, agent.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        code, out = socket_probe(socket_path, "x509")
        assert code == 0, out
        assert out["spiffe_id"] == WEB
        chain = [x509.load_pem_x509_certificate(p.encode()) for p in out["chain"]]
        PolicyBuilder().store(Store(roots)).build_client_verifier().verify(chain[0], chain[1:])

        assert "revoked" in strongroom("mesh", "revoke", *dd, "--spiffe-id", WEB).stdout
        revoked = strongroom("mesh", "revoked", *dd, "--trust-domain", "example.org", "--json")
        assert json.loads(revoked.stdout) == [WEB]
        deadline = time.monotonic() + 30  # the agent rereads revocations every second
        while (answer := socket_probe(socket_path, "x509"))[0] == 0:
            assert time.monotonic() < deadline
        code, out = answer
        assert code == 3 and "no identity issued" in out["message"]

        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
        assert not socket_path.exists()
    finally:
        with agent:  # on the way out: close its pipes, wait for it
            agent.kill()
    strongroom("mesh", "unregister", *dd, registered["entry_id"])
    assert json.loads(strongroom("mesh", "entries", *dd, "--json").stdout) == []
    strongroom("mesh", "unregister", *dd, registered["entry_id"], expect=1)
