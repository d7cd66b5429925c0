"""``strongroom server`` as a real subprocess: first start, restart, HTTP, TLS, shutdown."""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.cli.init import initialise
from strongroom.kms.audit import verify_chain
from strongroom.kms.audit_key import read_audit_chain
from strongroom.ports.sealed_store import seal_store
from strongroom.rootkey import open_root_of_trust
from strongroom.store import SqliteStore
from strongroom.testing.server import ServerProcess, client_for, run_server


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server started on a missing data directory, shared by the read-only checks."""
    data_dir = tmp_path_factory.mktemp("srv") / "data"
    server = ServerProcess(data_dir).start()
    yield server
    assert server.stop() == 0


def test_first_start_creates_files_with_modes(first_start: ServerProcess) -> None:
    data_dir = first_start.data_dir
    assert _mode(data_dir) == 0o700
    for name in ("admin-credentials.json", "master.key", "config.json", "strongroom.db"):
        assert _mode(data_dir / name) == 0o600, name
    creds = json.loads((data_dir / "admin-credentials.json").read_text())
    assert set(creds) == {
        "AccessKeyId",
        "SecretAccessKey",
        "AccountId",
        "Region",
        "Endpoint",
        "CaBundle",
    }
    assert creds["Endpoint"] == first_start.endpoint_url
    assert creds["CaBundle"] == str(data_dir / "ca.pem")
    assert creds["Region"] == "us-east-1"
    assert str(data_dir / "admin-credentials.json") in first_start.output()
    assert creds["SecretAccessKey"] not in first_start.output()
    # No private key in clear anywhere in the data directory (CA and server keys are wrapped).
    for path in data_dir.iterdir():
        assert b"PRIVATE KEY" not in path.read_bytes(), path


def test_ca_pem_verifies_the_server_for_boto3(first_start: ServerProcess) -> None:
    info = first_start.info()
    kms = client_for(info)
    key_id = kms.create_key(Description="first")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    identity = client_for(info, "sts").get_caller_identity()
    assert identity["Account"] == info.credentials["AccountId"]
    ca = x509.load_pem_x509_certificate((first_start.data_dir / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    context = ssl.create_default_context(cafile=str(info.ca_bundle))
    for host in ("localhost", "127.0.0.1"):
        with (
            socket.create_connection(("127.0.0.1", first_start.port)) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", first_start.port)) as raw,
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_health_readiness_and_metrics(first_start: ServerProcess) -> None:
    assert first_start.get("/healthz") == (200, b'{"status":"ok"}')
    assert first_start.get("/readyz") == (200, b'{"status":"ready"}')
    kms = client_for(first_start.info())
    kms.list_keys()
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="alias/missing")
    status, body = first_start.get("/metrics")
    text = body.decode()
    assert status == 200
    assert 'strongroom_api_requests_total{operation="ListKeys",status="200"}' in text
    assert 'strongroom_api_errors_total{error="NotFoundException",operation="DescribeKey"}' in text
    assert 'strongroom_api_request_duration_seconds_count{operation="ListKeys"}' in text
    assert "strongroom_audit_events_written_total" in text


def test_restart_reuses_credentials_ca_and_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with run_server(data_dir) as (endpoint, ca_bundle, creds):
        kms = client_for(run_info(endpoint, ca_bundle, creds))
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept")["CiphertextBlob"]
        assert ca_bundle is not None
        ca_before = Path(ca_bundle).read_bytes()
        leaf_before = _leaf(endpoint, ca_bundle)
    with run_server(data_dir) as (endpoint2, ca_bundle2, creds2):
        assert ca_bundle2 is not None
        assert Path(ca_bundle2).read_bytes() == ca_before
        assert _leaf(endpoint2, ca_bundle2) == leaf_before
        assert creds2["SecretAccessKey"] == creds["SecretAccessKey"]
        assert creds2["Endpoint"] == endpoint2  # kept current: a new free port
        kms = client_for(run_info(endpoint2, ca_bundle2, creds2))
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
        assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key_id]


def run_info(endpoint: str, ca_bundle: Any, creds: dict[str, Any]) -> Any:
    from strongroom.testing.server import ServerInfo

    return ServerInfo(endpoint, ca_bundle, creds)


def _leaf(endpoint: str, ca_bundle: Any, hostname: str = "127.0.0.1") -> bytes:
    port = int(endpoint.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(ca_bundle))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_insecure_http_serves_plain_http_and_says_so(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--insecure-http").start()
    try:
        info = server.info()
        assert info.endpoint_url.startswith("http://")
        assert info.credentials["CaBundle"] is None
        kms = client_for(info)
        assert kms.generate_random(NumberOfBytes=16)["Plaintext"]
        assert "WARNING" in server.output() and "PLAIN HTTP" in server.output()
    finally:
        assert server.stop() == 0


def test_operator_certificate_is_served(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "operator")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    args = ("--tls-cert", str(cert_file), "--tls-key", str(key_file))
    with run_server(tmp_path / "data", *args) as (_, ca_bundle, creds):
        assert ca_bundle is None and creds["CaBundle"] is None
        served = _leaf(creds["Endpoint"], cert_file, hostname="localhost")
        assert served == cert.public_bytes(serialization.Encoding.DER)


def test_pkcs11_root_of_trust_with_two_workers(softhsm_token: Any, tmp_path: Path) -> None:
    uri = softhsm_token.uri("server-root")
    server = ServerProcess(tmp_path / "data", "--root-of-trust", uri, "--workers", "2").start()
    try:
        kms = client_for(server.info())
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blobs = [kms.encrypt(KeyId=key_id, Plaintext=b"hsm")["CiphertextBlob"] for _ in range(6)]
        assert {kms.decrypt(CiphertextBlob=b)["Plaintext"] for b in blobs} == {b"hsm"}
        assert server.get("/readyz")[0] == 200
        assert not (server.data_dir / "master.key").exists()
    finally:
        assert server.stop() == 0, server.output()
        server.close()


def _workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(c)
        for c in children
        if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        and b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()
    ]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_dead_worker_is_replaced_and_orphans_stop(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--workers", "2").start()
    try:
        assert server.process is not None
        supervisor = server.process.pid
        workers = _workers_of(supervisor)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(set(_workers_of(supervisor)) - {workers[0]}) < 2:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        server.wait_healthy(30)
        kms = client_for(server.info())
        for _ in range(4):  # new connections reach either worker
            kms.generate_random(NumberOfBytes=8)
        # Without its supervisor a worker shuts itself down.
        current = _workers_of(supervisor)
        os.kill(supervisor, signal.SIGKILL)
        server.process.wait()
        deadline = time.monotonic() + 30
        while not all(_gone(w) for w in current):
            assert time.monotonic() < deadline, "orphaned workers kept running:\n" + server.output()
            time.sleep(0.05)
        assert _refused(server.port)
    finally:
        server.close()


def test_conflicting_store_option_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    initialise(data_dir)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli",
            "server",
            "--data-dir",
            str(data_dir),
            "--port",
            "0",
            "--store",
            "postgresql://nobody@127.0.0.1:1/none",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "another key store" in done.stderr


# -- graceful shutdown ----------------------------------------------------------------------


def _signed_encrypt(server: ServerProcess, key_id: str) -> tuple[bytes, bytes]:
    """A signed Encrypt request as (head, body) bytes."""
    creds = server.credentials()
    body = json.dumps(
        {"KeyId": key_id, "Plaintext": base64.b64encode(b"in flight").decode()}
    ).encode()
    request = AWSRequest(
        method="POST",
        url=server.endpoint_url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "TrentService.Encrypt",
        },
    )
    credentials = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"])
    SigV4Auth(credentials, "kms", creds["Region"]).add_auth(request)
    lines = ["POST / HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode(), body


def _read_response(tls: ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        rest += tls.recv(65536)
    return int(lines[0].split()[1]), headers, rest


def _metric(server: ServerProcess, labels: str) -> float:
    text = server.get("/metrics")[1].decode()
    prefix = "strongroom_api_requests_total{" + labels + "} "
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # the listener closed while this connect was queued: ask again
        return False
    return False


def test_sigterm_under_load_finishes_requests_in_flight(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--workers", "2").start()
    try:
        info = server.info()
        key_id = client_for(info).create_key()["KeyMetadata"]["KeyId"]
        stop_load = threading.Event()
        outcomes: list[str] = []

        def load() -> None:
            kms = client_for(info)
            while not stop_load.is_set():
                try:
                    kms.encrypt(KeyId=key_id, Plaintext=b"load")
                    outcomes.append("ok")
                except ClientError as exc:  # an HTTP answer that is an error: must not be
                    outcomes.append(f"http {exc.response['Error']['Code']}")
                except BotoCoreError:  # the connection went away: the server is stopping
                    outcomes.append("connection")
                    time.sleep(0.05)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        # A request in flight: its head and half its body are sent before the SIGTERM.
        head, body = _signed_encrypt(server, key_id)
        context = ssl.create_default_context(cafile=str(info.ca_bundle))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(head + body[: len(body) // 2])
        while outcomes.count("ok") < 20:
            time.sleep(0.01)
        # /metrics on any worker counts the requests of both.
        for _ in range(4):
            answered = outcomes.count("ok")
            assert _metric(server, 'operation="Encrypt",status="200"') >= answered
        server.signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while not _refused(server.port):  # every process has stopped accepting
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        tls.sendall(body[len(body) // 2 :])
        status, headers, payload = _read_response(tls)
        tls.close()
        stop_load.set()
        for thread in threads:
            thread.join()
        assert status == 200, payload
        assert json.loads(payload)["CiphertextBlob"]
        assert headers.get("connection") == "close"
        assert server.wait() == 0, server.output()
        assert "ok" in outcomes
        assert not [o for o in outcomes if o.startswith("http")]
    finally:
        server.close()
    # The request answered during shutdown is in the audit chain (flushed on the way out).
    root = open_root_of_trust("local", server.data_dir)
    store = seal_store(SqliteStore(server.data_dir / "strongroom.db"), root)
    try:
        events = store.read(lambda tx: tx.read_audit(0, 100_000))
        chain = read_audit_chain(store, root)
    finally:
        store.close()
        root.close()
    assert chain.keyed
    verify_chain(events, chain=chain)
    ids = {json.loads(e.body).get("requestId") for e in events}
    assert headers["x-amzn-requestid"] in ids
