"""End-to-end AWS KMS API benchmark: ``strongroom server`` side by side with ``moto_server``.

Starts, on this machine and in one run:

- ``strongroom server --workers 1`` and ``--workers 2`` (HTTPS with the instance CA,
  SigV4 verified on every request, audit log on: the defaults), each on a fresh SQLite
  data directory;
- ``strongroom server --workers 1 --insecure-http`` (plain HTTP, as moto serves; skip with
  ``--no-plain-http``);
- ``moto_server`` (moto's KMS; plain HTTP, it has no TLS).

For each server it creates a key, then measures Decrypt (of a 32-byte plaintext's blob),
Encrypt (32 bytes) and GenerateDataKey (AES_256) at 1, 16 and 64 keep-alive connections:
one request, SigV4-signed once with botocore and replayed by a lean client (``wrk`` if
installed, else the asyncio client of ``bench/loadgen.py``). Each cell runs a warm-up,
then a fixed duration; cells are interleaved across servers and repeated for
``--rounds`` rounds; the table shows medians. Every request must answer 200: non-200
answers and socket errors are counted and reported. Server CPU (all its processes, from
``/proc``), client CPU and the CPU the rest of the machine used meanwhile are recorded.

Nothing is pinned: the servers and the client share the machine's cores, as they would
on a 2-core host running both. Results replace the section "AWS KMS API (strongroom
server vs moto)" of ``docs/benchmarks.md`` (``--no-write`` leaves it alone).

Examples::

    python bench/kms_api.py              # full run (about 12 minutes), writes the doc
    python bench/kms_api.py --quick      # one short round (about 2 minutes)
    python bench/kms_api.py --client asyncio --rounds 1 --no-write
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from kms_api_report import DOC, Cell, render, write_doc
from loadgen import presign, raw_request, run_load, run_wrk

from strongroom.testing.server import ServerProcess, free_port

OPERATIONS = ("Decrypt", "Encrypt", "GenerateDataKey")
CONNECTIONS = (1, 16, 64)
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

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.endpoint.startswith("https"):
            return None
        return ssl.create_default_context(cafile=self.ca_bundle)

    def signed(self, operation: str) -> tuple[dict[str, str], bytes]:
        """A freshly signed request (SigV4 allows 15 minutes; a full run takes longer)."""
        return presign(self.endpoint, self.credentials, operation, self.bodies[operation])


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
    """One process at one moment: CPU seconds so far, and run-queue wait of its threads."""

    cpu: float
    waits: dict[int, float]

    def since(self, before: Sched) -> tuple[float, float]:
        """CPU seconds and run-queue wait seconds between ``before`` and this."""
        waited = sum(w - before.waits.get(tid, 0.0) for tid, w in self.waits.items())
        return self.cpu - before.cpu, waited


def process_sched(pids: list[int]) -> list[Sched]:
    """CPU time (``/proc/PID/stat``, which keeps the time of threads that ended) and the
    run-queue wait of each live thread (``/proc/PID/task/TID/schedstat``, nanoseconds:
    time the scheduler kept a ready thread off every core, i.e. contention). Threads
    that end between two samples take their wait with them (moto's per-connection ones).
    """
    out = []
    for pid in pids:
        cpu, waits = 0.0, {}
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(pid)
            cpu = (int(fields[11]) + int(fields[12])) / TICK
            for tid in os.listdir(f"/proc/{pid}/task"):
                path = f"/proc/{pid}/task/{tid}/schedstat"
                with contextlib.suppress(OSError, ValueError), open(path, encoding="ascii") as f:
                    waits[int(tid)] = int(f.read().split()[1]) / 1e9
        out.append(Sched(cpu, waits))
    return out


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (not idle, not waiting for I/O)."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


# --- servers ----------------------------------------------------------------------------


def kms_client(target: Target) -> Any:
    creds = target.credentials
    return boto3.session.Session().client(
        "kms",
        endpoint_url=target.endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        region_name=creds.get("Region", "us-east-1"),
        verify=target.ca_bundle if target.ca_bundle else True,
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
    """Send the signed request once; fail unless it answers 200 with the expected fields."""
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


@contextlib.contextmanager
def strongroom_target(base: Path, key: str, label: str, *args: str) -> Iterator[Target]:
    server = ServerProcess(base / key, *args).start()
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


# --- load -------------------------------------------------------------------------------


def run_client(
    client: str, target: Target, operation: str, connections: int, seconds: float
) -> tuple[dict[str, Any], float]:
    """One run of the load generator; return its summary and its own CPU seconds."""
    headers, body = target.signed(operation)
    if client == "wrk":
        before = os.times()
        summary = run_wrk(target.endpoint, headers, body, connections, seconds)
        after = os.times()
        used = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        summary["non200"] = summary.pop("non2xx")
        return summary, used
    import uvloop

    parts = urlsplit(target.endpoint)
    start = time.process_time()
    result = uvloop.run(
        run_load(
            parts.hostname or "127.0.0.1",
            parts.port or 80,
            raw_request(headers, body),
            connections,
            seconds,
            target.ssl_context(),
        )
    )
    used = time.process_time() - start
    summary = result.summary()
    summary["non200"] = sum(n for status, n in result.statuses.items() if status != 200)
    return summary, used


def measure(
    client: str,
    target: Target,
    operation: str,
    connections: int,
    args: argparse.Namespace,
    round_no: int,
) -> Cell:
    """Warm up, then one measured run of one cell, with the CPU everyone used meanwhile."""
    run_client(client, target, operation, connections, args.warmup)
    pids = process_tree(target.root_pid)
    sched0, busy0, wall0 = process_sched(pids), machine_busy(), time.monotonic()
    summary, client_cpu = run_client(client, target, operation, connections, args.duration)
    sched1, busy1, wall1 = process_sched(pids), machine_busy(), time.monotonic()
    deltas = [after.since(before) for before, after in zip(sched0, sched1, strict=True)]
    per_process = [cpu for cpu, _ in deltas]
    waited = sum(wait for _, wait in deltas)
    return Cell(
        target=target.key,
        operation=operation,
        connections=connections,
        round=round_no,
        requests=int(summary["requests"]),
        seconds=float(summary["seconds"]),
        p50_ms=float(summary["p50_ms"]),
        p99_ms=float(summary["p99_ms"]),
        errors=int(summary["errors"]),
        non200=int(summary["non200"]),
        server_cpu=sum(per_process),
        server_wait=waited,
        process_cpu=per_process,
        client_cpu=client_cpu,
        machine_cpu=busy1 - busy0,
        wall=wall1 - wall0,
    )


def choose_client(wanted: str) -> str:
    if wanted == "asyncio":
        return "asyncio"
    if shutil.which("wrk"):
        return "wrk"
    if wanted == "wrk":
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    print("wrk not found (apt-get install -y wrk); using the asyncio client of bench/loadgen.py")
    return "asyncio"


def run_all(args: argparse.Namespace, client: str, base: Path) -> tuple[list[Cell], list[Any]]:
    specs: list[Callable[[], contextlib.AbstractContextManager[Target]]] = [
        moto_target,
        lambda: strongroom_target(base, "sr1", "strongroom, 1 worker, HTTPS", "--workers", "1"),
        lambda: strongroom_target(base, "sr2", "strongroom, 2 workers, HTTPS", "--workers", "2"),
    ]
    if args.plain_http:
        specs.append(
            lambda: strongroom_target(
                base, "sr1http", "strongroom, 1 worker, plain HTTP", "--insecure-http"
            )
        )
    cells: list[Cell] = []
    with contextlib.ExitStack() as stack:
        targets = [stack.enter_context(spec()) for spec in specs]
        for target in targets:
            prepare_bodies(target)
            for operation in OPERATIONS:
                check_once(target, operation)
            print(f"{target.label}: {target.endpoint} ready")
        for round_no in range(args.rounds):
            for operation in OPERATIONS:
                for connections in CONNECTIONS:
                    # Rotate the order each round so no server always follows the same one.
                    shift = (round_no + connections) % len(targets)
                    for target in targets[shift:] + targets[:shift]:
                        cell = measure(client, target, operation, connections, args, round_no)
                        cells.append(cell)
                        print(cell.line(target.label), flush=True)
    return cells, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2 s cells")
    parser.add_argument("--duration", type=float, help="seconds per cell (default 5; quick 2)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell")
    parser.add_argument("--rounds", type=int, help="rounds (median; default 3, quick 1)")
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument(
        "--no-plain-http",
        dest="plain_http",
        action="store_false",
        help="skip strongroom over plain HTTP",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to write the section")
    parser.add_argument("--raw", type=Path, help="also write every cell as JSON here")
    args = parser.parse_args()
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    client = choose_client(args.client)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kms-api-bench-") as base:
        cells, targets = run_all(args, client, Path(base))
    labels = {t.key: t.label for t in targets}
    section = render(cells, labels, args, client, load_before)
    print(section)
    if args.raw:
        args.raw.write_text(json.dumps([c.__dict__ for c in cells], indent=1), encoding="utf-8")
    if not args.no_write:
        write_doc(section, args.doc)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
