"""``strongroom mesh agent --endpoint``: SVIDs from a running server, for a py-spiffe workload.

Real processes: ``strongroom server`` on loopback, the agent as the console script with an
access key created ``--mesh-agent``, and the py-spiffe probe as the workload.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from strongroom.data.signed_json import SignedJsonClient
from strongroom.errors import AccessDeniedError, NotFoundError, ValidationError
from strongroom.mesh.svid import certificates_from_der, spiffe_id_of
from strongroom.testing.server import ServerInfo, console_script, run_server

PROBE = Path(__file__).with_name("spiffe_probe.py")
WEB = "spiffe://example.org/web"
GONE = "spiffe://example.org/gone"


def run(*args: str, env: dict[str, str] | None = None, expect: int = 0) -> str:
    done = subprocess.run(
        [console_script(), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == expect, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mesh-endpoint") / "data"


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerInfo]:
    with run_server(data_dir) as info:
        yield info


def _key(data_dir: Path, *flags: str) -> dict[str, Any]:
    out = run(
        "admin", "access-key", "create", "--tenant", "platform", "--user", "agent", *flags,
        "--json", "--data-dir", str(data_dir),
    )  # fmt: skip
    return json.loads(out[: out.rindex("}") + 1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def keys(server: ServerInfo, data_dir: Path) -> dict[str, dict[str, Any]]:
    run("admin", "tenant", "create", "platform", "--data-dir", str(data_dir))
    # an agent may start a trust domain's CA only where workloads are registered
    run(
        "mesh", "register", "--spiffe-id", "spiffe://example.org/nobody",
        "--selector", "unix:uid:65534", "--data-dir", str(data_dir),
    )  # fmt: skip
    return {"agent": _key(data_dir, "--mesh-agent"), "plain": _key(data_dir, "--admin")}


def aws_env(creds: dict[str, Any], tmp: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ.update(
        AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
        AWS_CONFIG_FILE=str(tmp / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return environ


def client(server: ServerInfo, creds: dict[str, Any]) -> SignedJsonClient:
    from botocore.credentials import Credentials

    return SignedJsonClient(
        server.endpoint_url,
        "us-east-1",
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"]),
        "StrongroomMesh",
        verify=str(server.ca_bundle),
    )


def _public_der() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_only_a_mesh_agent_key_may_call_the_authority(
    server: ServerInfo, keys: dict[str, dict[str, Any]]
) -> None:
    plain = client(server, keys["plain"])
    admin = client(server, server.credentials)
    agent = client(server, keys["agent"])
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
    server: ServerInfo, keys: dict[str, dict[str, Any]], tmp_path: Path, socket_dir: Path
) -> None:
    out = run(
        "mesh", "agent", "--socket", str(socket_dir / "a.sock"), "--trust-domain", "example.org",
        "--endpoint", server.endpoint_url, "--ca-bundle", str(server.ca_bundle),
        env=aws_env(keys["plain"], tmp_path), expect=1,
    )  # fmt: skip
    assert "--mesh-agent" in out
    assert not (socket_dir / "a.sock").exists()
    both = run(
        "mesh", "agent", "--socket", str(socket_dir / "a.sock"), "--trust-domain", "example.org",
        "--endpoint", server.endpoint_url, "--data-dir", str(tmp_path), expect=1,
    )  # fmt: skip
    assert "exclude each other" in both


def _start_agent(
    server: ServerInfo, creds: dict[str, Any], socket_path: Path, tmp: Path
) -> subprocess.Popen[str]:
    agent = subprocess.Popen(
        [
            console_script(), "mesh", "agent", "--socket", str(socket_path),
            "--trust-domain", "example.org", "--endpoint", server.endpoint_url,
            "--ca-bundle", str(server.ca_bundle),
        ],
        env=aws_env(creds, tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert agent.stdout is not None
    line = agent.stdout.readline()
    assert "SVIDs from" in line, (line, agent.stderr.read() if agent.poll() is not None else "")
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        assert agent.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    return agent


def test_agent_serves_svids_from_the_server(
    server: ServerInfo,
    data_dir: Path,
    keys: dict[str, dict[str, Any]],
    tmp_path: Path,
    socket_dir: Path,
    socket_probe: Callable[..., tuple[int, dict[str, Any]]],
) -> None:
    dd = ("--data-dir", str(data_dir))
    me = f"unix:uid:{os.getuid()}"
    run("mesh", "register", "--spiffe-id", WEB, "--selector", me, *dd)
    run("mesh", "register", "--spiffe-id", GONE, "--selector", me, *dd)
    socket_path = socket_dir / "agent.sock"
    agent = _start_agent(server, keys["agent"], socket_path, tmp_path)
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
        assert x509.UniformResourceIdentifier(WEB) in verified.subjects
        # the private key was made by the agent and matches the certificate
        private = serialization.load_pem_private_key(out["key_pem"].encode(), None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert private.public_key().public_numbers() == chain[0].public_key().public_numbers()

        code, jwt = socket_probe(socket_path, "jwt", "payments")
        assert code == 0, jwt
        assert jwt["spiffe_id"] == WEB
        assert jwt["validated_by_agent"] == WEB and jwt["validated_locally"] == WEB

        run("mesh", "revoke", "--spiffe-id", WEB, *dd)
        code, out = socket_probe(socket_path, "x509")
        assert code == 3 and "no identity issued" in out["message"], out
    finally:
        agent.terminate()
        assert agent.wait(30) == 0
    assert not socket_path.exists()
    plain = client(server, keys["plain"])
    with pytest.raises(AccessDeniedError):
        plain.call("GetMeshBundle", {"TrustDomain": "example.org"})
    plain.close()
    events = _audit_events(data_dir, {"IssueX509Svid", "IssueJwtSvid", "GetMeshBundle"})
    agent_key, plain_key = keys["agent"]["AccessKeyId"], keys["plain"]["AccessKeyId"]
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


def _audit_events(data_dir: Path, operations: set[str]) -> list[dict[str, Any]]:
    """The audit events of these operations (the server flushes its queue within a second)."""
    deadline = time.monotonic() + 20
    while True:
        out = run(
            "admin", "audit", "show", "--limit", "100000", "--json", "--data-dir", str(data_dir)
        )
        events = [row["Event"] for row in json.loads(out[: out.rindex("}") + 1])["Events"]]
        found = [e for e in events if isinstance(e, dict) and e.get("operation") in operations]
        done = {e["operation"] for e in found} >= {"IssueJwtSvid", "GetMeshBundle"}
        if done or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_an_unreachable_server_is_unavailable_to_workloads(
    socket_dir: Path, socket_probe: Callable[..., tuple[int, dict[str, Any]]]
) -> None:
    """The agent's key service is down: the workload gets UNAVAILABLE, which clients retry."""
    from botocore.credentials import Credentials

    from strongroom.kms.ports import SystemClock
    from strongroom.mesh.agent import AgentThread
    from strongroom.mesh.remote import RemoteMeshAuthority
    from strongroom.mesh.schedule import SystemScheduler
    from strongroom.mesh.workload_api import WorkloadApi
    from strongroom.testing.server import free_port

    nobody = SignedJsonClient(
        f"https://127.0.0.1:{free_port()}",
        "us-east-1",
        Credentials("AKIAEXAMPLEEXAMPLE00", "secret"),
        "StrongroomMesh",
        timeout=(2.0, 2.0),
    )
    remote = RemoteMeshAuthority(nobody, "example.org")
    api = WorkloadApi(remote, remote, SystemScheduler(SystemClock()))
    try:
        with AgentThread(api, socket_dir / "down.sock") as agent:
            code, out = socket_probe(agent.socket_path, "x509")
    finally:
        remote.close()
    assert code == 3
    assert "UNAVAILABLE" in out["message"] and "mesh authority is unavailable" in out["message"]
