"""A lean load generator for the KMS API: one pre-signed request replayed over keep-alive.

Each of ``--connections`` connections sends the same signed request, waits for the whole
response, records the latency and sends it again, for ``--duration`` seconds. The request
is signed once (SigV4 allows 15 minutes of clock skew, so keep runs shorter than that);
the client is an asyncio protocol on uvloop that only finds the end of each response, so
it costs far less CPU than the server it measures. With ``--wrk`` the same request is
replayed by ``wrk`` (Debian package ``wrk``) through a generated Lua script instead.

Examples::

    # against a running server, with its admin credentials (creates a key to use)
    python bench/loadgen.py --credentials DATA_DIR/admin-credentials.json \\
        --operation Decrypt --connections 16 --duration 10
    # the same with wrk as the client
    python bench/loadgen.py --credentials DATA_DIR/admin-credentials.json --wrk

Reusable pieces: :func:`presign` (a signed request as raw bytes), :func:`run_load`
(asyncio replay returning a :class:`LoadResult`), :func:`run_wrk`, :func:`add_run_arguments`
(the server benchmarks' cell arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

JSON_11 = "application/x-amz-json-1.1"


@dataclass
class LoadResult:
    """Latencies (seconds) of the completed requests, and what went wrong."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rate, 1),
            "p50_ms": round(self.percentile(50) * 1000, 3),
            "p99_ms": round(self.percentile(99) * 1000, 3),
            "statuses": self.statuses,
            "errors": self.errors,
        }


def presign(
    endpoint: str,
    credentials: dict[str, Any],
    operation: str,
    body: dict[str, Any],
    service: str = "kms",
) -> tuple[dict[str, str], bytes]:
    """Sign one JSON 1.1 request; return its headers (with Host) and body."""
    data = json.dumps(body).encode("utf-8")
    request = AWSRequest(
        method="POST",
        url=endpoint.rstrip("/") + "/",
        data=data,
        headers={"Content-Type": JSON_11, "X-Amz-Target": f"TrentService.{operation}"},
    )
    creds = Credentials(credentials["AccessKeyId"], credentials["SecretAccessKey"])
    SigV4Auth(creds, service, credentials.get("Region", "us-east-1")).add_auth(request)
    headers = dict(request.headers.items())
    headers.setdefault("Host", urlsplit(endpoint).netloc)
    return headers, data


def raw_request(headers: dict[str, str], body: bytes) -> bytes:
    """The request as bytes on the wire (HTTP/1.1, keep-alive)."""
    lines = ["POST / HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class _Replay(asyncio.Protocol):
    """Send the request, read one whole response, record, repeat until the deadline."""

    def __init__(self, request: bytes, start: float, deadline: float, result: LoadResult) -> None:
        self.request = request
        self.start = start
        self.deadline = deadline
        self.result = result
        self.buffer = bytearray()
        self.sent = 0.0
        self.transport: Any = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        delay = max(0.0, self.start - time.perf_counter())
        asyncio.get_running_loop().call_later(delay, self._send)

    def _send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            match = _LENGTH.search(self.buffer, 0, end + 2)
            length = int(match.group(1)) if match else 0
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            status = int(self.buffer[9:12])
            del self.buffer[:total]
            now = time.perf_counter()
            self.result.latencies.append(now - self.sent)
            self.result.statuses[status] = self.result.statuses.get(status, 0) + 1
            if now >= self.deadline:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if time.perf_counter() < self.deadline:
            self.result.errors += 1
        if not self.done.done():
            self.done.set_result(None)


async def run_load(
    host: str,
    port: int,
    request: bytes,
    connections: int,
    seconds: float,
    ssl_context: ssl.SSLContext | None,
) -> LoadResult:
    """Replay ``request`` on ``connections`` keep-alive connections for ``seconds``."""
    loop = asyncio.get_running_loop()
    result = LoadResult(seconds=seconds)
    protocols: list[_Replay] = []
    # Connect first, then start the clock: handshakes are not part of the measurement.
    start = time.perf_counter() + 0.2 + 0.01 * connections
    deadline = start + seconds
    for _ in range(connections):
        protocol = _Replay(request, start, deadline, result)
        await loop.create_connection(
            lambda p=protocol: p,  # type: ignore[misc]
            host,
            port,
            ssl=ssl_context,
            server_hostname=host if ssl_context else None,
        )
        protocols.append(protocol)
    await asyncio.gather(*(p.done for p in protocols))
    result.seconds = time.perf_counter() - start
    return result


def run_wrk(
    endpoint: str,
    headers: dict[str, str],
    body: bytes,
    connections: int,
    seconds: float,
    threads: int = 1,
) -> dict[str, Any]:
    """Replay the request with ``wrk``; return its rate and latency percentiles."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    lua_headers = "".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n"
        for k, v in headers.items()
        if k.lower() != "host"
    )
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode('utf-8'))}\n"
        f"{lua_headers}"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, '
        '\\"p50_ms\\": %f, \\"p99_ms\\": %f, \\"errors\\": %d, \\"non2xx\\": %d}\\n", '
        "summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, "
        "latency:percentile(99) / 1000, summary.errors.connect + summary.errors.read + "
        "summary.errors.write + summary.errors.timeout, summary.errors.status))\n"
        "end\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        path = handle.name
    try:
        out = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                path,
                endpoint.rstrip("/") + "/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(path).unlink()
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    data: dict[str, Any] = json.loads(line[5:])
    data["rps"] = round(data["requests"] / data["seconds"], 1)
    return data


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (a supervisor and its workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [pid]
    if children.exists():
        for child in children.read_text().split():
            found += process_tree(int(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(all, idle) CPU ticks of the machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]


def prepare_request(
    endpoint: str, credentials: dict[str, Any], ca_bundle: str | None, operation: str
) -> tuple[dict[str, str], bytes]:
    """Create a key and sign one ``operation`` request using it."""
    client = boto3.session.Session().client(
        "kms",
        endpoint_url=endpoint,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        region_name=credentials.get("Region", "us-east-1"),
        verify=ca_bundle if ca_bundle else True,
        config=Config(retries={"total_max_attempts": 1}),
    )
    key_id = client.create_key(Description="loadgen")["KeyMetadata"]["KeyId"]
    body: dict[str, Any]
    if operation == "Decrypt":
        blob = client.encrypt(KeyId=key_id, Plaintext=b"x" * 32)["CiphertextBlob"]
        body = {"CiphertextBlob": base64.b64encode(blob).decode("ascii")}
    elif operation == "Encrypt":
        body = {"KeyId": key_id, "Plaintext": base64.b64encode(b"x" * 32).decode("ascii")}
    elif operation == "GenerateDataKey":
        body = {"KeyId": key_id, "KeySpec": "AES_256"}
    else:
        raise SystemExit(f"unsupported operation {operation}")
    return presign(endpoint, credentials, operation, body)


def add_run_arguments(
    parser: argparse.ArgumentParser,
    *,
    duration: float | None,
    rounds: int | None,
    duration_help: str = "seconds per cell (default %(default)s)",
    rounds_help: str = "rounds (median; default %(default)s)",
) -> None:
    """Add how a server benchmark runs its cells (bench/kms_api.py, bench/kms_api_tail.py).

    ``--duration`` and ``--rounds`` (with these defaults), ``--warmup``, the wait for a
    quiet machine before each cell (``--quiet-below`` cores, at most ``--quiet-wait``
    seconds) and ``--raw`` (every cell as JSON).
    """
    parser.add_argument("--duration", type=float, default=duration, help=duration_help)
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell")
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.3,
        help="before each cell, wait until other work keeps fewer cores than this busy",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="longest wait for that per cell, seconds (0: do not wait)",
    )
    parser.add_argument("--raw", type=Path, help="also write every cell as JSON here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--credentials", required=True, help="admin-credentials.json")
    parser.add_argument("--endpoint", help="default: the Endpoint in the credentials")
    parser.add_argument("--ca-bundle", help="default: the CaBundle in the credentials")
    parser.add_argument("--operation", default="Decrypt")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--wrk", action="store_true", help="use wrk as the client")
    parser.add_argument(
        "--server-pid",
        type=int,
        help="also report the server's CPU time per request (this pid and its children)",
    )
    args = parser.parse_args()
    credentials = json.loads(Path(args.credentials).read_text())
    endpoint = args.endpoint or credentials["Endpoint"]
    ca_bundle = args.ca_bundle or credentials.get("CaBundle")
    headers, body = prepare_request(endpoint, credentials, ca_bundle, args.operation)
    pids = process_tree(args.server_pid) if args.server_pid else []
    cpu_before, ticks_before = cpu_seconds(pids), machine_ticks()
    if args.wrk:
        summary = run_wrk(endpoint, headers, body, args.connections, args.duration)
    else:
        parts = urlsplit(endpoint)
        context = None
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca_bundle)
        import uvloop

        result = uvloop.run(
            run_load(
                parts.hostname or "127.0.0.1",
                parts.port or 443,
                raw_request(headers, body),
                args.connections,
                args.duration,
                context,
            )
        )
        summary = result.summary()
    summary.update(operation=args.operation, connections=args.connections)
    if pids:
        used = cpu_seconds(pids) - cpu_before
        total, idle = (a - b for a, b in zip(machine_ticks(), ticks_before, strict=True))
        hz = os.sysconf("SC_CLK_TCK")
        summary["server_cpu_us_per_request"] = round(used / max(1, summary["requests"]) * 1e6, 1)
        summary["server_share_of_machine"] = round(used * hz / max(1, total), 3)
        summary["machine_idle_share"] = round(idle / max(1, total), 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
