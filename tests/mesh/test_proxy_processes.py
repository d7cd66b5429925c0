"""The sidecars as real processes (``strongroom mesh proxy``), and fed by the Workload API.

- Two ``strongroom mesh proxy`` processes and an HTTP server process on loopback, SVIDs in
  PEM files that are replaced while the proxies run; SIGTERM stops them cleanly.
- Two sidecar processes whose SVIDs come from the real Workload API agent (py-spiffe's
  ``X509Source``; it cannot share a process with the agent's own proto module).
- Sidecars with SVIDs from the real :class:`MeshCA`, which is also their revocation hook.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509

from strongroom.mesh.agent.serve import AgentThread
from strongroom.mesh.proxy.peer_check import NoRevocation
from strongroom.mesh.proxy.policy import InboundListener, OutboundListener, ProxyPolicy, SvidConfig
from strongroom.mesh.proxy.sidecar import SidecarProxy
from strongroom.mesh.proxy.svid_source import StaticSvidSource, SvidState
from strongroom.mesh.proxy.yaml_config import Address
from strongroom.testing.children import die_with_parent
from strongroom.testing.mesh_certs import IssuedCert, TestTrustDomain
from strongroom.testing.mesh_proxy import BODY, HttpResponder, LoopThread, http_get
from strongroom.testing.server import free_port, run_cli, scrape_metrics

if TYPE_CHECKING:
    from tests.mesh.conftest import Mesh

TD = "example.org"


class Proc:
    """A child process whose stderr JSON lines are read as they come."""

    def __init__(self, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent(),  # gone even if this test process is killed
        )
        self.lines: list[dict[str, Any]] = []

    def wait_line(self, message: str) -> dict[str, Any]:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            line: dict[str, Any] = json.loads(raw)
            self.lines.append(line)
            if line.get("message") == message:
                return line
        raise AssertionError(f"process ended before logging {message!r}: {self.lines}")

    def port(self) -> int:
        return int(self.wait_line("listening")["address"].rsplit(":", 1)[1])

    def stop(self) -> int:
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(20)
        finally:
            self.popen.kill()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.popen.kill()
        proc.popen.wait()
        for stream in (proc.popen.stdout, proc.popen.stderr):
            if stream is not None:
                stream.close()


def _write_svid(folder: Path, name: str, cert: IssuedCert, bundle: bytes) -> None:
    (folder / f"{name}.pem").write_bytes(cert.chain_pem)
    (folder / f"{name}.key").write_bytes(cert.key_pem)
    (folder / "bundle.pem").write_bytes(bundle)


def _served_serial(port: int, td: TestTrustDomain, tmp_path: Path) -> int:
    client = td.issue_svid("/a")
    (tmp_path / "probe.pem").write_bytes(client.chain_pem + client.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=td.bundle_pem.decode())
    ctx.load_cert_chain(tmp_path / "probe.pem")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_two_sidecar_processes(tmp_path: Path, procs: list[Proc]) -> None:
    td = TestTrustDomain(TD)
    _write_svid(tmp_path, "a", td.issue_svid("/a"), td.bundle_pem)
    b_first = td.issue_svid("/b")
    _write_svid(tmp_path, "b", b_first, td.bundle_pem)
    server = subprocess.Popen(
        [sys.executable, "-m", "strongroom.testing.mesh_proxy", "0"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent(),
    )
    try:
        assert server.stdout is not None
        upstream = int(server.stdout.readline())
        (tmp_path / "b.yaml").write_text(
            f"""trust_domain: {TD}
svid:
  files: {{cert: b.pem, key: b.key, bundle: bundle.pem, poll_seconds: 0.05}}
inbound:
  - name: api
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:{upstream}
    allow: [spiffe://{TD}/a]
"""
        )
        b_metrics = free_port()
        b = Proc(
            "-m", "strongroom.cli", "mesh", "proxy", "--config", str(tmp_path / "b.yaml"),
            "--metrics-port", str(b_metrics),
        )  # fmt: skip
        procs.append(b)
        b_port = b.port()
        (tmp_path / "a.yaml").write_text(
            f"""trust_domain: {TD}
svid: {{files: {{cert: a.pem, key: a.key, bundle: bundle.pem}}}}
outbound:
  - {{name: to-b, listen: "127.0.0.1:0", peer: "127.0.0.1:{b_port}", peer_id: "spiffe://{TD}/b"}}
"""
        )
        a_metrics = free_port()
        a = Proc(
            "-m", "strongroom.cli", "mesh", "proxy", "-c", str(tmp_path / "a.yaml"),
            "--metrics-port", str(a_metrics),
        )  # fmt: skip
        procs.append(a)
        a_port = a.port()
        assert a.wait_line("metrics")["address"] == f"127.0.0.1:{a_metrics}"
        for _ in range(5):
            assert http_get(a_port) == (200, BODY)
        assert _served_serial(b_port, td, tmp_path) == b_first.serial
        b_second = td.issue_svid("/b")
        _write_svid(tmp_path, "b", b_second, td.bundle_pem)
        b.wait_line("svid rotated")  # the file watcher saw the new files
        assert _served_serial(b_port, td, tmp_path) == b_second.serial
        assert http_get(a_port) == (200, BODY)
        # Prometheus metrics, read from the counters the sidecars keep
        seen_b, seen_a = scrape_metrics(b_metrics), scrape_metrics(a_metrics)
        prefix = "strongroom_mesh_proxy_"
        assert seen_b[prefix + "inbound_accepted_total", ()] >= 8  # 6 relayed, 2 probes
        assert seen_b[prefix + "inbound_denied_total", ()] == 0
        assert seen_b[prefix + "rotations_total", ()] == 1
        assert seen_b[prefix + "svid_expiry_timestamp", ()] == pytest.approx(
            b_second.not_after.timestamp()
        )
        handshakes = sum(
            v for (name, _), v in seen_a.items() if name == prefix + "peer_handshakes_total"
        )
        assert handshakes >= 1
        takes = {
            labels: v for (name, labels), v in seen_a.items() if name == prefix + "pool_takes_total"
        }
        assert sum(takes.values()) == 6  # one client connection per GET
        assert (prefix + "pool_ready", (("listener", "to-b"),)) in seen_a
        assert a.stop() == 0
        assert b.stop() == 0
        stopped = b.wait_line("stopped")
        assert stopped["stats"]["accepted"] >= 5
    finally:
        server.kill()
        server.wait()
        assert server.stdout is not None
        server.stdout.close()


def test_bad_policy_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        f"trust_domain: {TD}\nsvid: {{workload_api: unix:///tmp/x.sock}}\n"
        "inbound:\n  - name: api\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:80\n"
        "    allow: [spiffe://other.org/web]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "strongroom.cli", "mesh", "proxy", "-c", str(tmp_path / "p.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "p.yaml:7: inbound[0].allow[0]: spiffe://other.org/web is not in trust domain" in (
        done.stderr
    )


def test_check_reads_the_svid_and_reports_without_listening(tmp_path: Path) -> None:
    td = TestTrustDomain(TD)
    _write_svid(tmp_path, "b", td.issue_svid("/b"), td.bundle_pem)
    (tmp_path / "b.yaml").write_text(
        f"""trust_domain: {TD}
svid: {{files: {{cert: b.pem, key: b.key, bundle: bundle.pem}}}}
inbound:
  - {{name: api, listen: "127.0.0.1:1", upstream: "127.0.0.1:2", allow: [spiffe://{TD}/a]}}
"""
    )
    good = run_cli("mesh", "proxy", "--config", str(tmp_path / "b.yaml"), "--check")
    assert f"SVID spiffe://{TD}/b" in good
    assert f"inbound api: 127.0.0.1:1 -> 127.0.0.1:2, allow spiffe://{TD}/a" in good
    # an SVID of another trust domain would be refused at start: --check says so
    other = TestTrustDomain("other.org")
    _write_svid(tmp_path, "b", other.issue_svid("/b"), other.bundle_pem)
    bad = run_cli("mesh", "proxy", "--config", str(tmp_path / "b.yaml"), "--check", expect=1)
    assert f"is not in trust domain {TD}" in bad
    # egress: the trust store must load
    (tmp_path / "ca.pem").write_bytes(td.bundle_pem)
    (tmp_path / "egress.yaml").write_text(
        'listen: 127.0.0.1:0\nallow: ["*.example.com:443"]\nca_file: ca.pem\n'
    )
    ok = run_cli("mesh", "egress", "--config", str(tmp_path / "egress.yaml"), "--check")
    assert "allow *.example.com:443" in ok
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    broken = run_cli(
        "mesh", "egress", "--config", str(tmp_path / "egress.yaml"), "--check", expect=1
    )
    assert "not a PEM trust store" in broken


def test_unreachable_workload_api_is_reported(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        f"trust_domain: {TD}\nsvid: {{workload_api: unix://{tmp_path}/none.sock}}\n"
        "outbound: [{name: o, listen: 127.0.0.1:0, peer: 127.0.0.1:9, "
        f"peer_id: spiffe://{TD}/x}}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "strongroom.cli", "mesh", "proxy", "-c", str(tmp_path / "p.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "no SVID from the Workload API at unix://" in done.stderr
    assert "Traceback" not in done.stderr
    # py-spiffe names DSA keys at import: with cryptography >= 51 that warned on every start
    assert "DSA is deprecated" not in done.stderr and "Warning" not in done.stderr


def test_sidecar_processes_fed_by_the_workload_api(
    mesh: Mesh, agent: AgentThread, tmp_path: Path, procs: list[Proc]
) -> None:
    web = f"spiffe://{TD}/web"
    mesh.registry.register(web, [f"unix:uid:{os.getuid()}"])
    with LoopThread() as loop:
        responder = HttpResponder()
        up = loop.call(responder.start())
        (tmp_path / "b.yaml").write_text(
            f"""trust_domain: {TD}
svid: {{workload_api: "{agent.endpoint}"}}
inbound: [{{name: api, listen: "127.0.0.1:0", upstream: "127.0.0.1:{up}", allow: ["{web}"]}}]
"""
        )
        b = Proc("-m", "strongroom.cli", "mesh", "proxy", "-c", str(tmp_path / "b.yaml"))
        procs.append(b)
        b_port = b.port()
        (tmp_path / "a.yaml").write_text(
            f"""trust_domain: {TD}
svid: {{workload_api: "{agent.endpoint}"}}
outbound: [{{name: b, listen: "127.0.0.1:0", peer: "127.0.0.1:{b_port}", peer_id: "{web}"}}]
"""
        )
        a_metrics = free_port()
        a = Proc(
            "-m", "strongroom.cli", "mesh", "proxy", "-c", str(tmp_path / "a.yaml"),
            "--metrics-port", str(a_metrics),
        )  # fmt: skip
        procs.append(a)
        a_port = a.port()
        assert a.wait_line("metrics")["address"] == f"127.0.0.1:{a_metrics}"
        try:
            for _ in range(3):
                assert http_get(a_port) == (200, BODY)
            assert responder.requests == 3
        finally:
            assert a.stop() == 0
            assert b.stop() == 0
            loop.call(responder.close())


def test_mesh_ca_svids_and_the_mesh_ca_as_revocation_hook(mesh: Mesh) -> None:
    web, api = f"spiffe://{TD}/web", f"spiffe://{TD}/api"
    bundle = tuple(mesh.ca.x509_authorities())
    a_source = StaticSvidSource(SvidState(mesh.ca.new_svid(web), bundle))
    b_source = StaticSvidSource(SvidState(mesh.ca.new_svid(api), bundle))
    with LoopThread() as loop:
        responder = HttpResponder()
        up = loop.call(responder.start())
        listener = InboundListener(
            "api", Address("127.0.0.1", 0), Address("127.0.0.1", up), frozenset({web})
        )
        b = SidecarProxy(ProxyPolicy(TD, SvidConfig(), inbound=(listener,)), b_source, mesh.ca)
        loop.call(b.start())
        out = OutboundListener(
            "b", Address("127.0.0.1", 0), Address("127.0.0.1", b.addresses["api"].port), api
        )
        a = SidecarProxy(ProxyPolicy(TD, SvidConfig(), outbound=(out,)), a_source, NoRevocation())
        loop.call(a.start())
        port = a.addresses["b"].port
        try:
            assert http_get(port) == (200, BODY)
            mesh.ca.revoke(web)  # from now on its certificates are refused
            assert http_get(port) == (0, b"")
            assert http_get(port) == (0, b"")
            assert b.stats.denied >= 2
            assert responder.requests == 1
        finally:
            loop.call(a.close())
            loop.call(b.close())
            loop.call(responder.close())
