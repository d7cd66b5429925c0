"""The servers ``bench/kms_api.py`` measures, and what ``/proc`` says they used.

:func:`moto_target` and :func:`strongroom_target` start a server and yield a
:class:`Target` (endpoint, credentials, CA bundle, process id); :func:`prepare_bodies`
creates a key there and the request bodies; :func:`check_once` checks one answer.
:func:`process_tree`, :func:`process_sched` and :func:`machine_busy` read CPU time and
scheduler run-queue wait from ``/proc``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from loadgen import presign

from strongroom.testing.server import ServerProcess, free_port

EXPECTED = {
    "Decrypt": ("Plaintext", "KeyId"),
    "Encrypt": ("CiphertextBlob", "KeyId"),
    "GenerateDataKey": ("Plaintext", "CiphertextBlob", "KeyId"),
}
MOTO_CREDENTIALS = {
    "AccessKeyId": "AKIDBENCHMOTO0000000",
    "SecretAccessKey": "moto-accepts-any-secret",
    "Region": "us-east-1",
}
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """A server under test, its endpoint and the request bodies to replay against it."""

    key: str
    label: str
    endpoint: str
    credentials: dict[str, Any]
    ca_bundle: str | None
    root_pid: int
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    closes: bool = False
    """Whether the server closes the connection after each response (moto does)."""
    verify: bool = True
    """Whether clients check the server's certificate (LocalStack's is self-signed)."""

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.endpoint.startswith("https"):
            return None
        if not self.verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=self.ca_bundle)

    def signed(self, operation: str) -> tuple[dict[str, str], bytes]:
        """A freshly signed request (SigV4 allows 15 minutes; a full run takes longer)."""
        return presign(self.endpoint, self.credentials, operation, self.bodies[operation])


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway P-256 certificate for 127.0.0.1 and its key (``openssl``), in ``directory``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"),
            *("-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def granian_command(
    factory: str,
    port: int,
    workers: int,
    tls: tuple[str, str] | None = None,
    websockets: bool = True,
) -> list[str]:
    """granian serving the RSGI app ``factory`` (``module:function``) on 127.0.0.1."""
    command = [
        *(sys.executable, "-m", "granian", "--interface", "rsgi", "--factory"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        *("--log-level", "warning"),
    ]
    if tls is not None:
        command += ["--ssl-certificate", tls[0], "--ssl-keyfile", tls[1]]
    if not websockets:
        command.append("--no-ws")
    return [*command, factory]


# --- /proc accounting -------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


@dataclass(frozen=True, slots=True)
class Sched:
    """One process at one moment: CPU seconds so far, and per thread its run-queue wait and
    the times the scheduler took a core from it (involuntary context switches)."""

    cpu: float
    waits: dict[int, float]
    preempted: dict[int, int] = field(default_factory=dict)

    def since(self, before: Sched) -> tuple[float, float]:
        """CPU seconds and run-queue wait seconds between ``before`` and this."""
        waited = sum(w - before.waits.get(tid, 0.0) for tid, w in self.waits.items())
        return self.cpu - before.cpu, waited

    def preempted_since(self, before: Sched) -> int:
        """Involuntary context switches of the threads between ``before`` and this."""
        return sum(n - before.preempted.get(tid, 0) for tid, n in self.preempted.items())


def process_sched(pids: list[int]) -> list[Sched]:
    """CPU time (``/proc/PID/stat``, which keeps the time of threads that ended), and the
    run-queue wait (``/proc/PID/task/TID/schedstat``, nanoseconds: time the scheduler kept
    a ready thread off every core, i.e. contention) and involuntary context switches
    (``/proc/PID/task/TID/status``) of each live thread. Threads that end between two
    samples take theirs with them (moto's per-connection ones).
    """
    out = []
    for pid in pids:
        cpu, waits, preempted = 0.0, {}, {}
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(pid)
            cpu = (int(fields[11]) + int(fields[12])) / TICK
            for tid in os.listdir(f"/proc/{pid}/task"):
                path = f"/proc/{pid}/task/{tid}/schedstat"
                with contextlib.suppress(OSError, ValueError), open(path, encoding="ascii") as f:
                    waits[int(tid)] = int(f.read().split()[1]) / 1e9
                path = f"/proc/{pid}/task/{tid}/status"
                with contextlib.suppress(OSError, ValueError), open(path, encoding="ascii") as f:
                    for line in f:
                        if line.startswith("nonvoluntary_ctxt_switches:"):
                            preempted[int(tid)] = int(line.split()[1])
        out.append(Sched(cpu, waits, preempted))
    return out


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (not idle, not waiting for I/O)."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


# --- servers ----------------------------------------------------------------------------


def kms_client(target: Target) -> Any:
    creds = target.credentials
    if not target.verify:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return boto3.session.Session().client(
        "kms",
        endpoint_url=target.endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        region_name=creds.get("Region", "us-east-1"),
        verify=(target.ca_bundle or True) if target.verify else False,
        config=Config(retries={"total_max_attempts": 1}),
    )


def prepare_bodies(target: Target) -> None:
    """Create a key on the server and the three request bodies that use it."""
    client = kms_client(target)
    key_id = client.create_key(Description="bench/kms_api.py")["KeyMetadata"]["KeyId"]
    plaintext = base64.b64encode(b"k" * 32).decode("ascii")
    blob = client.encrypt(KeyId=key_id, Plaintext=b"k" * 32)["CiphertextBlob"]
    target.bodies = {
        "Decrypt": {"CiphertextBlob": base64.b64encode(blob).decode("ascii")},
        "Encrypt": {"KeyId": key_id, "Plaintext": plaintext},
        "GenerateDataKey": {"KeyId": key_id, "KeySpec": "AES_256"},
    }


def check_once(target: Target, operation: str) -> None:
    """Send the signed request once; fail unless it answers 200 with the expected fields.

    Also notes whether the server closes the connection after the response.
    """
    headers, body = target.signed(operation)
    parts = urlsplit(target.endpoint)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=10, context=target.ssl_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        target.closes = (response.getheader("Connection") or "").lower() == "close"
    finally:
        conn.close()
    fields = json.loads(payload) if payload.startswith(b"{") else {}
    missing = [name for name in EXPECTED[operation] if name not in fields]
    if response.status != 200 or missing:
        raise SystemExit(
            f"{target.label} {operation}: status {response.status}, missing {missing}: "
            f"{payload[:300]!r}"
        )


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"moto_server exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/moto-api/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("moto_server did not start") from None
            time.sleep(0.1)


@contextlib.contextmanager
def moto_target() -> Iterator[Target]:
    port = free_port()
    found = shutil.which("moto_server")
    command = [found] if found else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, process)
        yield Target(
            "moto",
            "moto_server, HTTP",
            f"http://127.0.0.1:{port}",
            MOTO_CREDENTIALS,
            None,
            process.pid,
        )
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _ServerFrom(ServerProcess):
    """``strongroom server`` run by another interpreter (a checkout of another commit)."""

    def __init__(self, python: str, data_dir: Path, *args: str) -> None:
        super().__init__(data_dir, *args)
        self.python = python

    def command(self) -> list[str]:
        return [self.python, *super().command()[1:]]


@contextlib.contextmanager
def strongroom_target(
    base: Path, key: str, label: str, *args: str, python: str | None = None
) -> Iterator[Target]:
    """A ``strongroom server`` (of ``python``'s environment, if given) with ``args``."""
    server = (
        ServerProcess(base / key, *args)
        if python is None
        else _ServerFrom(python, base / key, *args)
    ).start()
    try:
        info = server.info()
        assert server.process is not None
        yield Target(
            key,
            label,
            info.endpoint_url,
            info.credentials,
            str(info.ca_bundle) if info.ca_bundle else None,
            server.process.pid,
        )
    finally:
        server.close()
