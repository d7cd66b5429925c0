"""The two KMIP servers of ``bench/databases.py``, each started as its users start it.

- Strongroom: ``strongroom init``, ``strongroom admin tenant create``, ``strongroom kmip
  client issue`` and ``strongroom kmip --port P`` (SQLite store, local root key), all
  through the command line in a temporary data directory.
- PyKMIP 0.11's own server: ``pykmip-server -f server.conf`` with TLS 1.2 (its
  ``TLS1.2`` suite), client certificates required, its SQLite database in the same
  temporary directory and a policy directory; certificates (ECDSA P-256, as Strongroom's)
  from a throwaway CA made here with ``cryptography``.

Both listen on loopback ports. :class:`KmipTarget` is what the load generator needs.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class KmipTarget:
    """A running KMIP server and the client files that reach it."""

    name: str
    port: int
    cert: str
    key: str
    ca: str
    pid: int


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_tls(target: KmipTarget, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until a client handshake with ``target`` succeeds."""
    context = ssl.create_default_context(cafile=target.ca)
    context.load_cert_chain(target.cert, target.key)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{target.name} exited with status {process.returncode}")
        try:
            with (
                socket.create_connection(("127.0.0.1", target.port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="localhost"),
            ):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{target.name} did not start") from None
            time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cli(*args: str) -> dict[str, str]:
    done = subprocess.run(
        [str(BIN / "strongroom"), *args, "--json"], check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout)) if done.stdout.strip() else {}


@contextlib.contextmanager
def strongroom_kmip(base: Path) -> Iterator[KmipTarget]:
    """``strongroom kmip`` on a free port, with one issued client certificate."""
    data = base / "strongroom"
    _cli("init", "--data-dir", str(data))
    _cli("admin", "tenant", "create", "bench", "--data-dir", str(data))
    issued = _cli(
        "kmip", "client", "issue", "--tenant", "bench", "--name", "bench",
        "--out-dir", str(base / "sr-client"), "--data-dir", str(data),
    )  # fmt: skip
    port = free_port()
    log = (base / "strongroom-kmip.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "strongroom"), "kmip", "--data-dir", str(data), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    target = KmipTarget(
        "Strongroom", port, issued["certificate"], issued["key"], issued["ca"], process.pid
    )
    try:
        wait_for_tls(target, process, 60)
        yield target
    finally:
        _stop(process)
        log.close()


# -- PyKMIP --------------------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, usage: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(signer_cert.subject if signer_cert else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=usage == "ca", path_length=None), critical=True)
    )
    if usage == "server":
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif usage == "client":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(signer_key, hashes.SHA256()), key


def _write_pair(directory: Path, stem: str, pair: tuple[x509.Certificate, Any]) -> None:
    cert, key = pair
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


POLICY = {
    "bench": {
        "preset": {
            kind: {op: "ALLOW_OWNER" for op in ("GET", "ENCRYPT", "DECRYPT", "ACTIVATE", "DESTROY")}
            for kind in ("SECRET_DATA", "SYMMETRIC_KEY")
        }
    }
}
"""A policy file for PyKMIP's policy directory (objects are usable by their owner)."""


@contextlib.contextmanager
def pykmip_server(base: Path) -> Iterator[KmipTarget]:
    """PyKMIP's ``pykmip-server`` on a free port: TLS 1.2, client certificates required."""
    if shutil.which("pykmip-server", path=str(BIN)) is None:
        raise SystemExit("pykmip-server is not installed (pip install -e '.[test]')")
    directory = base / "pykmip"
    (directory / "policies").mkdir(parents=True)
    ca = _issue("bench-ca", None, "ca")
    _write_pair(directory, "ca", ca)
    _write_pair(directory, "server", _issue("localhost", ca, "server"))
    _write_pair(directory, "client", _issue("bench", ca, "client"))
    (directory / "policies" / "bench.json").write_text(json.dumps(POLICY))
    port = free_port()
    config = directory / "server.conf"
    config.write_text(
        "[server]\n"
        "hostname=127.0.0.1\n"
        f"port={port}\n"
        f"certificate_path={directory / 'server.pem'}\n"
        f"key_path={directory / 'server.key'}\n"
        f"ca_path={directory / 'ca.pem'}\n"
        "auth_suite=TLS1.2\n"
        f"policy_path={directory / 'policies'}\n"
        "enable_tls_client_auth=True\n"
        "logging_level=WARNING\n"
        f"database_path={directory / 'pykmip.db'}\n"
    )
    log = (base / "pykmip.log").open("wb")
    process = subprocess.Popen(
        [
            str(BIN / "pykmip-server"),
            "-f",
            str(config),
            "-l",
            str(directory / "server.log"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
    )
    target = KmipTarget(
        "PyKMIP",
        port,
        str(directory / "client.pem"),
        str(directory / "client.key"),
        str(directory / "ca.pem"),
        process.pid,
    )
    try:
        wait_for_tls(target, process, 60)
        yield target
    finally:
        _stop(process)
        log.close()
