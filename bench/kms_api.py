"""End-to-end AWS KMS API benchmark: ``strongroom server`` side by side with ``moto_server``.

Starts, on this machine and in one run:

- ``strongroom server --workers 1`` and ``--workers 2`` (HTTPS with the instance CA,
  SigV4 verified on every request, audit log on: the defaults), each on a fresh SQLite
  data directory;
- ``strongroom server --workers 1 --insecure-http`` (plain HTTP, as moto serves; skip with
  ``--no-plain-http``);
- ``moto_server`` (moto's KMS; plain HTTP, it has no TLS; its Werkzeug server closes
  the connection after each response, so the client reconnects for every request);
- LocalStack's KMS over HTTPS (``localstack-core`` on the host, in a virtualenv of its own
  that ``bench/localstack_peer.py`` makes once; it needs Python 3.12+; skip with
  ``--no-localstack``; if it cannot be set up the run goes on without it and says why).

For each server it creates a key, then measures Decrypt (of a 32-byte plaintext's blob),
Encrypt (32 bytes) and GenerateDataKey (AES_256) at 1, 16 and 64 keep-alive connections:
one request, SigV4-signed once with botocore and replayed by a lean client (``wrk`` if
installed, else the asyncio client of ``bench/loadgen.py``). Each cell runs a warm-up,
then a fixed duration; cells are interleaved across servers and repeated for
``--rounds`` rounds; the table shows medians. Every request must answer 200: non-200
answers and socket errors are counted and reported. Server CPU (all its processes, from
``/proc``), client CPU and the CPU the rest of the machine used meanwhile are recorded.
Before each cell the run waits (up to ``--quiet-wait`` seconds) for other work on the
machine to drop below ``--quiet-below`` busy cores.

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
import asyncio
import contextlib
import os
import shutil
import signal
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bench_doc
from kms_api_report import (
    COMPARED,
    CONNECTIONS,
    DOC,
    OPERATIONS,
    Cell,
    compare_revision,
    render,
    write_doc,
)
from kms_api_servers import (
    Target,
    check_once,
    machine_busy,
    moto_target,
    prepare_bodies,
    process_sched,
    process_tree,
    strongroom_target,
)
from loadgen import LoadResult, add_run_arguments, raw_request, run_load, run_wrk
from localstack_peer import Unavailable, localstack_target


async def run_load_reconnecting(
    host: str,
    port: int,
    request: bytes,
    connections: int,
    seconds: float,
    ssl_context: ssl.SSLContext | None,
) -> LoadResult:
    """Like :func:`loadgen.run_load` for a server that closes every connection after its
    response (moto's Werkzeug server): each request opens a connection, sends, reads to
    the end. The latency includes the connect, as it does with wrk.
    """
    result = LoadResult(seconds=seconds)
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context)
                writer.write(request)
                response = await reader.read()
                writer.close()
            except OSError:
                result.errors += 1
                continue
            status = int(response[9:12]) if response.startswith(b"HTTP/1.") else 0
            result.latencies.append(time.perf_counter() - sent)
            result.statuses[status] = result.statuses.get(status, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    result.seconds = time.perf_counter() - start
    return result


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
        (run_load_reconnecting if target.closes else run_load)(
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


def wait_for_quiet(threshold: float, patience: float) -> float:
    """Wait (at most ``patience`` s) until the machine's busy cores drop below ``threshold``.

    Between cells our servers idle, so what keeps the cores busy is other work: a cell
    started in the middle of someone's test run measures that run as much as the server.
    Returns the seconds waited.
    """
    start = time.monotonic()
    while True:
        before, t0 = machine_busy(), time.monotonic()
        time.sleep(0.5)
        busy = (machine_busy() - before) / (time.monotonic() - t0)
        waited = time.monotonic() - start
        if busy < threshold or waited >= patience:
            return waited


def measure(
    client: str,
    target: Target,
    operation: str,
    connections: int,
    args: argparse.Namespace,
    round_no: int,
) -> Cell:
    """Warm up, then one measured run of one cell, with the CPU everyone used meanwhile."""
    quiet_wait = wait_for_quiet(args.quiet_below, args.quiet_wait) if args.quiet_wait else 0.0
    run_client(client, target, operation, connections, args.warmup)
    pids = process_tree(target.root_pid)
    sched0, busy0, wall0 = process_sched(pids), machine_busy(), time.monotonic()
    summary, client_cpu = run_client(client, target, operation, connections, args.duration)
    sched1, busy1, wall1 = process_sched(pids), machine_busy(), time.monotonic()
    deltas = [after.since(before) for before, after in zip(sched0, sched1, strict=True)]
    per_process = [cpu for cpu, _ in deltas]
    waited = sum(wait for _, wait in deltas)
    preempted = sum(a.preempted_since(b) for b, a in zip(sched0, sched1, strict=True))
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
        server_preempted=preempted,
        process_cpu=per_process,
        client_cpu=client_cpu,
        machine_cpu=busy1 - busy0,
        wall=wall1 - wall0,
        quiet_wait=quiet_wait,
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
        lambda: strongroom_target(base, "sr2", "strongroom, 2 workers, HTTPS", "--workers", "2"),
    ]
    if args.one_worker:
        specs.insert(
            1,
            lambda: strongroom_target(base, "sr1", "strongroom, 1 worker, HTTPS", "--workers", "1"),
        )
    if args.compare:
        label = f"strongroom {compare_revision(args.compare)}, 2 workers, HTTPS"
        specs.append(
            lambda: strongroom_target(base, COMPARED, label, "--workers", "2", python=args.compare)
        )
    if args.plain_http:
        specs.append(
            lambda: strongroom_target(
                base, "sr1http", "strongroom, 1 worker, plain HTTP", "--insecure-http"
            )
        )
    cells: list[Cell] = []
    with contextlib.ExitStack() as stack:
        targets = [stack.enter_context(spec()) for spec in specs]
        if args.localstack:
            try:
                targets.insert(
                    1,
                    stack.enter_context(
                        localstack_target(base, args.localstack_python, args.localstack_version)
                    ),
                )
            except Unavailable as why:
                args.localstack_missing = str(why)
                print(f"LocalStack left out: {why}", flush=True)
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
    add_run_arguments(
        parser,
        duration=None,
        rounds=None,
        duration_help="seconds per cell (default 5; quick 2)",
        rounds_help="rounds (median; default 3, quick 1)",
    )
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument(
        "--no-plain-http",
        dest="plain_http",
        action="store_false",
        help="skip strongroom over plain HTTP",
    )
    parser.add_argument(
        "--no-one-worker",
        dest="one_worker",
        action="store_false",
        help="skip strongroom with 1 worker",
    )
    parser.add_argument(
        "--compare",
        metavar="PYTHON",
        help="also run the strongroom of this interpreter's environment (another checkout, "
        "e.g. main's) with 2 workers, for a ratio measured in the same run",
    )
    parser.add_argument(
        "--no-localstack",
        dest="localstack",
        action="store_false",
        help="skip LocalStack's KMS",
    )
    parser.add_argument(
        "--localstack-python", metavar="PYTHON", help="a Python 3.12+ for LocalStack's env"
    )
    parser.add_argument(
        "--localstack-version", help="localstack-core release (default: the newest)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to write the section")
    args = parser.parse_args()
    args.localstack_missing = None
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    client = choose_client(args.client)
    # A SIGTERM (a timeout, a CI limit) unwinds like Ctrl-C, so the servers are stopped:
    # they run in sessions of their own and would outlive this process otherwise.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kms-api-bench-") as base:
        cells, targets = run_all(args, client, Path(base))
    labels = {t.key: t.label for t in targets}
    bench_doc.publish(render(cells, labels, args, client, load_before), cells, args, write_doc)


if __name__ == "__main__":
    main()
