"""Where one AWS KMS API request's CPU goes, layer by layer, in µs per request.

Starts ``strongroom server --workers 1`` (HTTPS with the instance CA unless
``--insecure-http``), replays one pre-signed request with ``wrk`` on N keep-alive
connections and, meanwhile, samples the worker with ``py-spy`` (``--native``, so time in
uvloop, OpenSSL and the other compiled parts lands on the C frames it is spent in). Each
on-CPU sample goes to one layer, chosen by its innermost frame that names one (see
``LAYERS``); the worker's measured CPU seconds per request are then split in those
proportions. CPU per request does not depend on how busy the machine is, which makes this
the figure to compare on a shared machine (req/s does).

    python bench/kms_api_profile.py                     # Decrypt, 16 connections, 10 s
    python bench/kms_api_profile.py --operation Encrypt --connections 64
    python bench/kms_api_profile.py --json out.json      # also the raw figures

Needs ``wrk`` (Debian) and ``py-spy`` (PyPI); run from the repository root.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kms_api_servers import prepare_bodies, process_sched, strongroom_target
from loadgen import run_wrk

# (layer, substrings of a frame "function (file)"): the innermost frame of a sample that
# contains one of them names the layer (frames of libc, libpython and OpenSSL are skipped,
# so their time goes to the caller: hashlib's to SigV4, _ssl's to TLS); the order breaks
# ties within one frame.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TLS", ("ssl.py", "SSLProtocol", "sslproto", "_ssl")),
    ("metrics", ("prometheus_client", "api/metrics.py")),
    ("SigV4", ("api/sigv4.py", "sigv4_cache")),
    ("JSON", ("api/json_body.py", "api/shapes.py", "json/", "orjson", "base64")),
    ("authorisation", ("kms/authz/",)),
    ("audit", ("kms/audit", "key_usage.py", "flush_audit", "_audit_loop", "audit_chain")),
    ("key service", ("strongroom/kms/", "strongroom/crypto/", "cryptography")),
    ("API (routing, request, access log)", ("strongroom/api/", "logging/")),
    (
        "HTTP parsing and protocol",
        ("httptools", "llhttp", "server/guarded_protocol.py", "server/http_protocol.py"),
    ),
    ("ASGI (uvicorn cycle, tasks)", ("uvicorn/", "server/runtime.py", "api/asgi.py", "task_")),
    ("event loop", ("uvloop", "loop.c", "uv_", "uv__", "asyncio/", "_asyncio")),
)
OTHER = "other"
SOCKET_IO = "kernel: socket send/receive"
_SYSCALLS = ("write (", "writev (", "read (", "sendmsg (", "recvmsg (", "send (", "recv (")
_GENERIC = ("(libc.so", "libpython", "object.h", "libcrypto", "libssl", "(0x", "abstract.h")
# Samples of a thread waiting (native stacks include them): not CPU, left out.
IDLE = (
    "epoll_pwait",
    "epoll_wait",
    "pthread_cond_timedwait",
    "pthread_cond_wait",
    "PyThread_acquire_lock_timed",
    "SimpleQueue_get",
    "fdatasync",  # the audit batch's commit waits for the disk
)


def layer_of(stack: list[str]) -> str:
    """The layer of one sample (frames outermost first)."""
    if stack[-1].startswith(_SYSCALLS) and any("uv" in f for f in stack[-5:-1]):
        return SOCKET_IO
    for frame in reversed(stack):
        if frame.startswith("0x") or any(mark in frame for mark in _GENERIC):
            continue
        for layer, marks in LAYERS:
            if any(mark in frame for mark in marks):
                return layer
    return OTHER


def profile(
    pid: int, seconds: float, rate: int, out: Path, native: bool
) -> subprocess.Popen[bytes]:
    """Start py-spy on ``pid`` for ``seconds`` writing collapsed stacks to ``out``."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    command = [spy, "record", "--format", "raw", "-r", str(rate), "-d", str(int(seconds))]
    command += ["-p", str(pid), "-o", str(out)]
    # --native pauses the process to unwind C frames; without it py-spy need not pause
    command.append("--native" if native else "--nonblocking")
    log = out.with_suffix(".log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def read_layers(path: Path) -> tuple[dict[str, int], collections.Counter[str]]:
    """Samples per layer, and per innermost frame (for the ``--top`` listing)."""
    layers: dict[str, int] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in path.read_text("utf-8", "replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        stack = stack_text.split(";")
        count = int(count_text)
        if any(mark in frame for frame in stack[-8:] for mark in IDLE):
            continue
        layers[layer_of(stack)] += count
        leaves[stack[-1]] += count
    return dict(layers), leaves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operation", default="Decrypt")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--insecure-http", action="store_true")
    parser.add_argument("--no-native", action="store_true", help="Python frames only")
    parser.add_argument("--top", type=int, default=0, help="also list the N busiest frames")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--stacks", type=Path, help="keep py-spy's raw stacks here")
    args = parser.parse_args()

    extra = ["--workers", "1"] + (["--insecure-http"] if args.insecure_http else [])
    with tempfile.TemporaryDirectory(prefix="kms-api-profile-") as tmp:
        base = Path(tmp)
        with strongroom_target(base, "strongroom", "strongroom", *extra) as target:
            prepare_bodies(target)
            headers, body = target.signed(args.operation)
            run_wrk(target.endpoint, headers, body, args.connections, 2.0)  # warm up
            out = base / "stacks.txt"
            spy = profile(target.root_pid, args.seconds, args.rate, out, not args.no_native)
            time.sleep(0.5)
            before = process_sched([target.root_pid])[0]
            result: dict[str, Any] = {}

            def load() -> None:
                result.update(
                    run_wrk(target.endpoint, headers, body, args.connections, args.seconds - 1)
                )

            thread = threading.Thread(target=load)
            thread.start()
            thread.join()
            after = process_sched([target.root_pid])[0]
            spy.wait(args.seconds + 30)
            cpu, waited = after.since(before)
            if "Errors: 0" not in out.with_suffix(".log").read_text("utf-8", "replace"):
                print(out.with_suffix(".log").read_text("utf-8", "replace").strip()[-600:])
            layers, leaves = read_layers(out) if out.exists() else ({}, collections.Counter())
            if args.stacks and out.exists():
                shutil.copyfile(out, args.stacks)
    requests = int(result["requests"])
    per_request_us = cpu / requests * 1e6
    total = sum(layers.values()) or 1
    rows = sorted(layers.items(), key=lambda item: -item[1])
    print(
        f"{args.operation} at {args.connections} connections, "
        f"{'plain HTTP' if args.insecure_http else 'HTTPS'}, 1 worker: "
        f"{result['rps']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
    )
    print(
        f"worker CPU {per_request_us:.1f} µs per request (run-queue wait {waited:.2f} s); "
        f"{total} samples; load average {os.getloadavg()[0]:.1f}"
    )
    print("| layer | share | µs per request |\n|---|---:|---:|")
    for name, count in rows:
        print(f"| {name} | {count / total:.0%} | {per_request_us * count / total:.1f} |")
    if args.top:
        print()
        for frame, count in leaves.most_common(args.top):
            print(f"{count / total:6.1%}  {frame}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "operation": args.operation,
                    "connections": args.connections,
                    "rps": result["rps"],
                    "p99_ms": result["p99_ms"],
                    "cpu_us_per_request": per_request_us,
                    "layers_us": {n: per_request_us * c / total for n, c in rows},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
