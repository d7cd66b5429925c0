"""Kubernetes KMS v2 plugin benchmark: Encrypt and Decrypt latency over the unix socket.

    python bench/k8s_plugin.py [--calls N] [--rounds R] [--clients C] [--no-write]

Runs ``strongroom k8s-plugin --data-dir DIR --tenant bench`` (the in-process key service:
SQLite in WAL mode with full fsync, local root key, JSON logs on, audit flushed every
second) as its own process on a unix socket in a temporary directory, and calls it
through the stub generated from the official ``api.proto`` as kube-apiserver would: a
32-byte DEK seed per Encrypt, each Decrypt on a different ciphertext (kube-apiserver
caches decrypted seeds, so every Decrypt it sends is a cache miss). Latency is measured
around each client call. One client calls back to back, ``R`` rounds of ``N`` calls per
method, interleaved; then ``C`` clients call at once. For scale, the same operations
straight through ``KeyService.call`` (no gRPC, in this process) are timed too. The table
is printed and written to docs/benchmarks.md, section "Kubernetes KMS v2 plugin".
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import bench_doc
import grpc

from strongroom.cli.context import open_service
from strongroom.cli.init import initialise
from strongroom.k8s import plugin_caller
from strongroom.k8s.proto import api_pb2, api_pb2_grpc
from strongroom.testing.service import tenant_caller

DOC = bench_doc.DOC
SECTION = "## Kubernetes KMS v2 plugin"
TARGET_P99_MS = 2.0
"""Issue 19 (issue 5 asked for 5 ms)."""
Round = tuple[list[float], float]  # latencies (s), wall seconds


class Results:
    """Rounds of latencies per measurement, in the order first seen."""

    def __init__(self) -> None:
        self.rounds: dict[str, list[Round]] = {}
        self.clients: dict[str, int] = {}
        self.inside: dict[str, list[float]] = {}
        """Per method: the plugin's own time per call (ms), from its log's ``latency_ms``."""

    def add(self, what: str, clients: int, result: Round) -> None:
        self.rounds.setdefault(what, []).append(result)
        self.clients[what] = clients


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[index]


def timed(calls: int, fn: Callable[[int], object], offset: int = 0) -> Round:
    latencies = []
    start = time.perf_counter()
    for i in range(offset, offset + calls):
        t0 = time.perf_counter()
        fn(i)
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - start


def concurrent(clients: int, calls: int, fn: Callable[[int], object]) -> Round:
    """``clients`` threads, ``calls`` calls each, started together."""
    barrier = threading.Barrier(clients + 1)
    results: list[list[float]] = [[] for _ in range(clients)]

    def worker(index: int) -> None:
        barrier.wait()
        for i in range(index * calls, (index + 1) * calls):
            t0 = time.perf_counter()
            fn(i)
            results[index].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return [x for r in results for x in r], time.perf_counter() - start


def start_plugin(data_dir: Path, socket_path: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """``strongroom k8s-plugin`` on ``socket_path`` with the data directory's key service."""
    command = [sys.executable, "-m", "strongroom.cli", "k8s-plugin", "--listen"]
    command += [f"unix://{socket_path}", "--key", "alias/k8s", "--data-dir", str(data_dir)]
    command += ["--tenant", "bench"]
    env = {k: v for k, v in os.environ.items() if k != "STRONGROOM_DATA_DIR"}
    return subprocess.Popen(command, stdout=log, stderr=log, env=env)


def prepare(data_dir: Path) -> str:
    """A data directory with tenant ``bench`` and its key ``alias/k8s``; return the ARN."""
    initialise(data_dir)
    service = open_service(data_dir)
    try:
        owner = tenant_caller(service, "bench")
        arn = str(service.call(owner, "CreateKey", {})["KeyMetadata"]["Arn"])
        service.call(owner, "CreateAlias", {"AliasName": "alias/k8s", "TargetKeyId": arn})
    finally:
        service.close()
    return arn


def over_socket(
    results: Results, data_dir: Path, socket_path: Path, calls: int, rounds: int, clients: int
) -> list[bytes]:
    """Measure the plugin process; return the ciphertexts made (for the direct runs)."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    process = start_plugin(data_dir, socket_path, log)
    channel = grpc.insecure_channel(f"unix://{socket_path}")
    stub = api_pb2_grpc.KeyManagementServiceStub(channel)
    total = calls * max(rounds, clients)
    seeds = [os.urandom(32) for _ in range(total)]
    sealed: list[api_pb2.EncryptResponse] = []
    try:
        grpc.channel_ready_future(channel).result(timeout=60)

        def encrypt(i: int) -> api_pb2.EncryptResponse:
            request = api_pb2.EncryptRequest(plaintext=seeds[i], uid=f"bench-{i}")
            return stub.Encrypt(request, timeout=10)

        def decrypt(i: int) -> bytes:
            s = sealed[i]
            request = api_pb2.DecryptRequest(ciphertext=s.ciphertext, uid=f"b-{i}", key_id=s.key_id)
            request.annotations.update(s.annotations)
            return stub.Decrypt(request, timeout=10).plaintext

        sealed.extend(encrypt(i) for i in range(total))  # also warms up
        assert decrypt(0) == seeds[0]
        for i in range(min(200, total)):
            decrypt(i)
        status = api_pb2.StatusRequest()
        for r in range(rounds):
            results.add("Encrypt over the socket", 1, timed(calls, encrypt, r * calls))
            results.add("Decrypt over the socket", 1, timed(calls, decrypt, r * calls))
            results.add(
                "Status over the socket (cached health)",
                1,
                timed(calls, lambda i: stub.Status(status, timeout=10)),
            )
        if clients > 1:
            label = f"over the socket, {clients} clients at once"
            results.add(f"Encrypt {label}", clients, concurrent(clients, calls, encrypt))
            results.add(f"Decrypt {label}", clients, concurrent(clients, calls, decrypt))
    finally:
        channel.close()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
        log.close()
    if code != 0:
        raise SystemExit(f"the plugin exited with status {code}:\n{output}")
    results.inside = handler_latencies(output)
    return [s.ciphertext for s in sealed]


def handler_latencies(log: str) -> dict[str, list[float]]:
    """``latency_ms`` of every successful Encrypt and Decrypt in the plugin's JSON log.

    That is the plugin's own time per call: from its handler being called to the answer
    handed back to gRPC (the plugin, ``KeyService.call``, the log line and the metrics).
    """
    found: dict[str, list[float]] = {}
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        method = entry.get("method")
        ok = entry.get("message") == "rpc" and entry.get("code") == "OK"
        if ok and method in ("Encrypt", "Decrypt"):
            found.setdefault(str(method), []).append(float(entry["latency_ms"]))
    return found


def direct(
    results: Results, data_dir: Path, arn: str, ciphertexts: list[bytes], calls: int
) -> None:
    """The same operations through ``KeyService.call`` in this process (no gRPC)."""
    service = open_service(data_dir)
    try:
        caller = plugin_caller(service, "bench")
        context = {"k8s-kms-plugin": "v2"}

        def encrypt(i: int) -> object:
            request = {"KeyId": "alias/k8s", "Plaintext": b"s" * 32, "EncryptionContext": context}
            return service.call(caller, "Encrypt", request)

        def decrypt(i: int) -> object:
            request = {"CiphertextBlob": ciphertexts[i], "EncryptionContext": context}
            return service.call(caller, "Decrypt", {**request, "KeyId": arn})

        for i in range(min(200, calls)):
            encrypt(i)
            decrypt(i)
        results.add("KeyService.call Encrypt (no gRPC)", 1, timed(calls, encrypt))
        results.add("KeyService.call Decrypt (no gRPC)", 1, timed(calls, decrypt))
    finally:
        service.close()


def machine() -> str:
    """The machine line: the common part and this benchmark's libraries."""
    return (
        bench_doc.machine()
        + f", grpcio {grpc.__version__}; load average {bench_doc.load_average()}"
    )


def summary(rounds: list[Round]) -> tuple[int, float, float, str, float, float]:
    """Calls, pooled p50 and p99 (ms), per-round p99 range, max (ms), calls/s."""
    pooled = sorted(x for latencies, _ in rounds for x in latencies)
    per_round = [percentile(sorted(latencies), 0.99) * 1000 for latencies, _ in rounds]
    spread = f"{min(per_round):.2f} to {max(per_round):.2f}" if len(per_round) > 1 else "-"
    rate = len(pooled) / sum(wall for _, wall in rounds)
    return (
        len(pooled),
        percentile(pooled, 0.5) * 1000,
        percentile(pooled, 0.99) * 1000,
        spread,
        pooled[-1] * 1000,
        rate,
    )


def render(results: Results, command: str, setup: str) -> str:
    lines = [
        SECTION,
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}). Machine: {setup}.",
        "",
        "| call | clients | calls | p50 ms | p99 ms | p99 per round, ms | max ms | calls/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for what, rounds in results.rounds.items():
        calls, p50, p99, spread, worst, rate = summary(rounds)
        lines.append(
            f"| {what} | {results.clients[what]} | {calls:,} | {p50:.2f} | {p99:.2f} | "
            f"{spread} | {worst:.2f} | {rate:,.0f} |"
        )
    lines += [
        "",
        "The plugin runs as `strongroom k8s-plugin --data-dir DIR --tenant bench` (its own",
        "process, JSON logs on, audit flushed every second); the client is this benchmark's",
        "process, dialling the unix socket with the stub generated from `api.proto`. Latency",
        "is measured around each client call: serialisation, the socket, the gRPC thread pool,",
        "the plugin, and `KeyService.call` (validation, authorisation, audit queueing; the",
        "key and its material come from the service's caches, so no store I/O). Every Decrypt",
        "opens a different ciphertext; Encrypt names the cached key version (refreshed every",
        "5 s, when it also runs DescribeKey and ListKeyRotations). p50 and p99 pool every",
        "round; the per-round p99 range shows how much of the tail is the machine (other",
        "work on its 2 vCPUs preempts either process). With several clients at once the",
        "calls queue for the plugin's GIL, so latency grows while throughput stays level.",
        f"Target (issue 19; issue 5 asked for 5 ms): p99 under {TARGET_P99_MS:g} ms for",
        "Encrypt and Decrypt with the in-process key service and one client (kube-apiserver",
        "sends few calls at a time: one Encrypt per new DEK seed, Decrypts on its cache misses).",
    ]
    inside = []
    for method, values in sorted(results.inside.items()):
        ordered = sorted(values)
        inside.append(
            f"{method} p50 {percentile(ordered, 0.5):.2f} ms, p99 "
            f"{percentile(ordered, 0.99):.2f} ms"
        )
    if inside:
        lines += [
            "",
            "Inside the plugin (the `latency_ms` of its log lines, every call of the run: from",
            "the handler called to its answer, the plugin and `KeyService.call`): "
            + "; ".join(inside)
            + ".",
            "The rest of a call is gRPC on both sides (the sync server takes each call on its",
            "polling thread and hands it to a pool thread, and back, a few thread wake-ups per",
            "call) and the two processes' scheduling; the tail of the over-the-socket rows is",
            "there, not in the handler. The plugin freezes its start-up heap out of the garbage",
            "collector once serving (before, one full collection of 17-45 ms fell inside the",
            "calls: the worst call of a run) and hands the GIL back every millisecond (the",
            "audit flusher's thread holds it in bursts of pure Python for up to the default",
            "5 ms).",
        ]
    verdicts = []
    for what in ("Encrypt over the socket", "Decrypt over the socket"):
        p99 = summary(results.rounds[what])[2]
        verdicts.append(
            f"{what.split()[0]} {p99:.2f} ms ({'met' if p99 < TARGET_P99_MS else 'missed'})"
        )
    status_p99 = summary(results.rounds["Status over the socket (cached health)"])[2]
    lines += [
        f"This run: p99 {verdicts[0]}, {verdicts[1]}. For comparison, the cached Status",
        f"call, which does no key service work at all, has a p99 of {status_p99:.2f} ms",
        "in the same run: whatever the p99 rows show beyond that is not the plugin's work but",
        "the machine's scheduling of the two processes.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Put this benchmark's section into docs/benchmarks.md."""
    bench_doc.write_section(text, SECTION, DOC)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per method")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (1: none)")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="k8s", dir="/tmp") as tmp:
        data_dir = Path(tmp) / "data"
        arn = prepare(data_dir)
        ciphertexts = over_socket(
            results, data_dir, Path(tmp) / "kms.sock", args.calls, args.rounds, args.clients
        )
        direct(results, data_dir, arn, ciphertexts, args.calls)
    command = "python bench/k8s_plugin.py"
    if (args.calls, args.rounds, args.clients) != (1000, 5, 8):
        command += f" --calls {args.calls} --rounds {args.rounds} --clients {args.clients}"
    text = render(results, command, machine())
    print(text)
    for what in ("Encrypt over the socket", "Decrypt over the socket"):
        p99 = summary(results.rounds[what])[2]
        verdict = "meets" if p99 < TARGET_P99_MS else "MISSES"
        print(f"{what}: p99 {p99:.2f} ms {verdict} the {TARGET_P99_MS:g} ms target")
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    sys.exit(main())
