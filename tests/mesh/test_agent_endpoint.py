"""``strongroom mesh agent --endpoint``: SVIDs from a running server, for a py-spiffe workload.

Real processes: ``strongroom server`` on loopback (``mesh_server``, tests/mesh/conftest.py),
the agent as the console script with an access key created ``--mesh-agent``, and the
py-spiffe probe as the workload.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from strongroom.errors import AccessDeniedError, NotFoundError, ValidationError
from strongroom.mesh.agent.serve import AgentThread
from strongroom.mesh.identity.svid import certificates_from_der, spiffe_id_of
from strongroom.testing.children import die_with_parent
from strongroom.testing.server import (
    ServerInfo,
    audit_events,
    aws_env,
    console_script,
    free_port,
    scrape_metrics,
    signed_json_client,
)
from strongroom.testing.server import run_cli as run

PROBE = Path(__file__).with_name("spiffe_probe.py")
WEB = "spiffe://example.org/web"
GONE = "spiffe://example.org/gone"


def _public_der() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_only_a_mesh_agent_key_may_call_the_authority(
    mesh_server: ServerInfo, mesh_keys: dict[str, dict[str, Any]], mesh_data_dir: Path
) -> None:
    dd = ("--data-dir", str(mesh_data_dir))
    run("mesh", "register", "--spiffe-id", WEB, "--selector", "unix:uid:65533", *dd)
    plain = signed_json_client(mesh_server, mesh_keys["plain"], "StrongroomMesh")
    admin = signed_json_client(mesh_server, mesh_server.credentials, "StrongroomMesh")
    agent = signed_json_client(mesh_server, mesh_keys["agent"], "StrongroomMesh")
    try:
        for refused in (plain, admin):
            with pytest.raises(AccessDeniedError, match="--mesh-agent"):
                refused.call("GetMeshBundle", {"TrustDomain": "example.org"})
            with pytest.raises(AccessDeniedError):
                refused.call("IssueX509Svid", {"SpiffeId": WEB, "PublicKey": _public_der()})
        reply = agent.call("IssueX509Svid", {"SpiffeId": WEB, "PublicKey": _public_der()})
        chain = certificates_from_der(base64.b64decode(reply["CertificateChain"]))
        assert str(spiffe_id_of(chain[0])) == WEB
        p384 = (
            ec.generate_private_key(ec.SECP384R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        with pytest.raises(ValidationError, match="P-256"):
            agent.call("IssueX509Svid", {"SpiffeId": WEB, "PublicKey": p384})
        with pytest.raises(ValidationError, match="DER"):
            agent.call("IssueX509Svid", {"SpiffeId": WEB, "PublicKey": b"\x30\x03\x02\x01\x00"})
        with pytest.raises(ValidationError):
            agent.call("IssueX509Svid", {"SpiffeId": "not-an-id", "PublicKey": _public_der()})
        with pytest.raises(ValidationError, match=r"[sS]piffeId"):
            agent.call("IssueX509Svid", {"PublicKey": _public_der()})
        # no CA springs up for a trust domain nobody registered a workload in
        for operation, request in (
            ("GetMeshBundle", {"TrustDomain": "elsewhere.org"}),
            ("ListRevokedIds", {"TrustDomain": "elsewhere.org"}),
            ("IssueX509Svid", {"SpiffeId": "spiffe://elsewhere.org/x", "PublicKey": _public_der()}),
        ):
            with pytest.raises(NotFoundError, match="register a workload"):
                agent.call(operation, request)
        assert agent.call("ListMeshEntries", {"TrustDomain": "elsewhere.org"}) == {"Entries": []}
    finally:
        for c in (plain, admin, agent):
            c.close()


def test_agent_with_a_key_that_is_no_mesh_agent_fails_at_start(
    mesh_server: ServerInfo, mesh_keys: dict[str, dict[str, Any]], tmp_path: Path, socket_dir: Path
) -> None:
    out = run(
        "mesh", "agent", "--socket", str(socket_dir / "a.sock"), "--trust-domain", "example.org",
        "--endpoint", mesh_server.endpoint_url, "--ca-bundle", str(mesh_server.ca_bundle),
        env=aws_env(mesh_keys["plain"], tmp_path), expect=1,
    )  # fmt: skip
    assert "--mesh-agent" in out
    assert not (socket_dir / "a.sock").exists()
    both = run(
        "mesh", "agent", "--socket", str(socket_dir / "a.sock"), "--trust-domain", "example.org",
        "--endpoint", mesh_server.endpoint_url, "--data-dir", str(tmp_path), expect=1,
    )  # fmt: skip
    assert "exclude each other" in both


def _start_agent(
    mesh_server: ServerInfo,
    creds: dict[str, Any],
    socket_path: Path,
    tmp: Path,
    metrics_port: int = 0,
) -> subprocess.Popen[str]:
    agent = subprocess.Popen(
        [
            console_script(), "mesh", "agent", "--socket", str(socket_path),
            "--trust-domain", "example.org", "--endpoint", mesh_server.endpoint_url,
            "--ca-bundle", str(mesh_server.ca_bundle), "--metrics-port", str(metrics_port),
        ],
        env=aws_env(creds, tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent(),  # gone even if this test process is killed
    )  # fmt: skip
    assert agent.stdout is not None
    line = agent.stdout.readline()
    assert agent.stderr is not None
    assert "SVIDs from" in line, (line, agent.stderr.read() if agent.poll() is not None else "")
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        assert agent.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    return agent


def test_agent_serves_svids_from_the_server(
    mesh_server: ServerInfo,
    mesh_data_dir: Path,
    mesh_keys: dict[str, dict[str, Any]],
    tmp_path: Path,
    socket_dir: Path,
    socket_probe: Callable[..., tuple[int, dict[str, Any]]],
) -> None:
    dd = ("--data-dir", str(mesh_data_dir))
    me = f"unix:uid:{os.getuid()}"
    run("mesh", "register", "--spiffe-id", WEB, "--selector", me, *dd)
    run("mesh", "register", "--spiffe-id", GONE, "--selector", me, *dd)
    socket_path = socket_dir / "agent.sock"
    metrics_port = free_port()
    agent = _start_agent(mesh_server, mesh_keys["agent"], socket_path, tmp_path, metrics_port)
    try:
        code, out = socket_probe(socket_path, "x509")
        assert code == 0, out
        assert out["ids"] == [GONE, WEB]
        # a revoked identity gets nothing from the agent (the server refuses to sign)
        run("mesh", "revoke", "--spiffe-id", GONE, *dd)
        code, out = socket_probe(socket_path, "x509")
        assert code == 0, out
        assert out["spiffe_id"] == WEB and out["ids"] == [WEB]
        chain = [x509.load_pem_x509_certificate(p.encode()) for p in out["chain"]]
        bundle_pem = run("mesh", "bundle", "--trust-domain", "example.org", *dd).encode()
        roots = x509.load_pem_x509_certificates(bundle_pem)
        assert [x509.load_pem_x509_certificate(p.encode()) for p in out["bundle"]] == roots
        verified = (
            PolicyBuilder().store(Store(roots)).build_client_verifier().verify(chain[0], chain[1:])
        )
        assert x509.UniformResourceIdentifier(WEB) in (verified.subjects or [])
        # the private key was made by the agent and matches the certificate
        private = serialization.load_pem_private_key(out["key_pem"].encode(), None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        leaf_key = cast(ec.EllipticCurvePublicKey, chain[0].public_key())
        assert private.public_key().public_numbers() == leaf_key.public_numbers()

        code, jwt = socket_probe(socket_path, "jwt", "payments")
        assert code == 0, jwt
        assert jwt["spiffe_id"] == WEB
        assert jwt["validated_by_agent"] == WEB and jwt["validated_locally"] == WEB

        run("mesh", "revoke", "--spiffe-id", WEB, *dd)
        code, out = socket_probe(socket_path, "x509")
        assert code == 3 and "no identity issued" in out["message"], out
        # the agent's Prometheus metrics count what the workload saw
        seen = scrape_metrics(metrics_port)
        calls = "strongroom_mesh_agent_calls_total"
        assert seen[calls, (("code", "OK"), ("method", "FetchJWTSVID"))] == 1
        assert seen[calls, (("code", "PERMISSION_DENIED"), ("method", "FetchX509SVID"))] >= 1
        assert seen["strongroom_mesh_agent_x509_svids_total", ()] >= 3  # [GONE, WEB], [WEB]
        assert seen["strongroom_mesh_agent_jwt_svids_total", ()] == 1
    finally:
        agent.terminate()
        with agent:  # on the way out: close its pipes
            assert agent.wait(30) == 0
    assert not socket_path.exists()
    plain = signed_json_client(mesh_server, mesh_keys["plain"], "StrongroomMesh")
    with pytest.raises(AccessDeniedError):
        plain.call("GetMeshBundle", {"TrustDomain": "example.org"})
    plain.close()
    events = audit_events(
        mesh_data_dir,
        {"IssueX509Svid", "IssueJwtSvid", "GetMeshBundle"},
        wait_for={"IssueJwtSvid", "GetMeshBundle"},
    )
    agent_key, plain_key = mesh_keys["agent"]["AccessKeyId"], mesh_keys["plain"]["AccessKeyId"]
    issued = {
        e["spiffeId"]
        for e in events
        if e["operation"] == "IssueX509Svid"
        and e["result"] == "Success"
        and e["accessKeyId"] == agent_key
    }
    assert {WEB, GONE} <= issued
    assert any(e["operation"] == "IssueJwtSvid" and e["result"] == "Success" for e in events)
    bundle_reads = [e for e in events if e["operation"] == "GetMeshBundle"]
    # the agent's reads every few seconds are not audited; a refused one is
    assert all(e["result"] != "Success" for e in bundle_reads)
    assert any(
        e["accessKeyId"] == plain_key and e["result"] == "AccessDeniedException"
        for e in bundle_reads
    )


def test_an_unreachable_server_is_unavailable_to_workloads(
    unreachable_agent: AgentThread, socket_probe: Callable[..., tuple[int, dict[str, Any]]]
) -> None:
    """The agent's key service is down: the workload gets UNAVAILABLE, which clients retry."""
    code, out = socket_probe(unreachable_agent.socket_path, "x509")
    assert code == 3
    assert "UNAVAILABLE" in out["message"] and "mesh authority is unavailable" in out["message"]


def test_agent_logs_no_library_noise(
    mesh_server: ServerInfo,
    mesh_keys: dict[str, dict[str, Any]],
    tmp_path: Path,
    socket_dir: Path,
) -> None:
    """No botocore "Found credentials" line at start, no grpclib line per disconnect."""
    sock = socket_dir / "quiet.sock"
    agent = _start_agent(mesh_server, mesh_keys["agent"], sock, tmp_path)
    try:
        for _ in range(2):  # each probe connects, asks, and hangs up
            run("mesh", "healthcheck", "--socket", str(sock), expect=0)
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
    assert "Workload API" in err  # the agent's own INFO lines are kept
    assert "grpclib" not in err and "Stream reset" not in err, err
    assert "Found credentials" not in err and "botocore" not in err, err


def test_an_agent_gets_only_what_is_registered_for_its_node(
    mesh_server: ServerInfo, mesh_keys: dict[str, dict[str, Any]], mesh_data_dir: Path
) -> None:
    dd = ("--data-dir", str(mesh_data_dir))
    mine, theirs = "spiffe://example.org/db-mine", "spiffe://example.org/db-theirs"
    run("mesh", "register", "--spiffe-id", mine, "--selector", "unix:uid:7", "--node", "agent", *dd)
    run("mesh", "register", "--spiffe-id", theirs, "--selector", "unix:uid:7", "--node", "n2", *dd)
    out = run(
        "mesh", "register", "--spiffe-id", "spiffe://example.org/strongroom/server",
        "--selector", "unix:uid:0", *dd, expect=1,
    )  # fmt: skip
    assert "reserved" in out
    agent = signed_json_client(mesh_server, mesh_keys["agent"], "StrongroomMesh")
    try:
        reply = agent.call("IssueX509Svid", {"SpiffeId": mine, "PublicKey": _public_der()})
        chain = certificates_from_der(base64.b64decode(reply["CertificateChain"]))
        assert str(spiffe_id_of(chain[0])) == mine
        for refused in (
            theirs,  # registered, but for another node
            "spiffe://example.org/anything",  # registered for nobody
            "spiffe://example.org/strongroom/server",  # the key server's own identity
        ):
            with pytest.raises(AccessDeniedError, match=r"reserved|registration entry"):
                agent.call("IssueX509Svid", {"SpiffeId": refused, "PublicKey": _public_der()})
            with pytest.raises(AccessDeniedError, match=r"reserved|registration entry"):
                agent.call("IssueJwtSvid", {"SpiffeId": refused, "Audience": ["x"]})
        listed = {e["SpiffeId"] for e in agent.call("ListMeshEntries", {})["Entries"]}
        assert mine in listed and theirs not in listed
    finally:
        agent.close()
