"""Where the KMS API's tail latency at 16 connections comes from, a change on and off.

``bench/kms_api.py`` judges issue 19's "p99 under 5 ms at 16 connections"; this looks
into it. It starts ``strongroom server --workers 2`` (HTTPS, SigV4, audit: the defaults)
once per variant, through ``bench/tail_probe.py`` so every process counts what can stall
its event loop, and replays one pre-signed request with ``wrk`` on 16 keep-alive
connections for ``--duration`` seconds per cell, variants alternated within each round
(the order rotating), for ``--rounds`` rounds. Per variant it reports the medians over
rounds of:

- requests/s, and latency p50 / p90 / p99 / p99.9 / max (wrk's own histogram);
- how the 16 connections were split between the workers (``ss``, mid-cell);
- the scheduler: run-queue wait of the workers' loop threads and of wrk (time each was
  ready but kept off every core, from ``/proc/.../schedstat``), per second and per wait;
- with ``--perf-sched SECONDS`` (``perf``, as root): for every time a loop thread or wrk
  was ready but waited for a core, what ran on the cores meanwhile (the other worker's
  loop, a worker's background thread, wrk, other work on the machine);
- the workers' garbage collections (count and pause, per generation), reads whose
  ``data_received`` took over 1 ms of wall time and how much of that was off the CPU,
  the audit flusher's CPU per round, and background record refreshes.

Variants: this checkout's server (``this``); ``--compare PYTHON`` adds the server of
another checkout's environment (e.g. main's); ``--variant NAME:VAR=VALUE,...`` adds this
checkout's server with extra environment (e.g. ``gcoff:STRONGROOM_TAIL_GC=off``, see
``bench/tail_probe.py``). Nothing is written unless ``--write`` is given (then the section
"KMS API tail at 16 connections" of ``docs/benchmarks.md`` is replaced).

    python bench/kms_api_tail.py --compare /path/to/main/.venv/bin/python
    python bench/kms_api_tail.py --variant gcoff:STRONGROOM_TAIL_GC=off --rounds 6

Needs ``wrk`` and ``ss`` (Debian packages ``wrk``, ``iproute2``); ``--perf-sched`` needs
``perf`` (``linux-perf``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_doc
from kms_api_servers import Target, machine_busy, prepare_bodies, process_sched, process_tree
from loadgen import add_run_arguments
from tail_report import HEADING, Cell, line, probe_delta, render
from tail_sched import (
    PERCENTILES,
    connection_split,
    perf_sched_record,
    perf_sched_waits,
    run_wrk,
    thread_sched,
    workers_of,
)

from strongroom.testing.server import ServerProcess

PROBE = Path(__file__).resolve().parent / "tail_probe.py"


class _ProbedServer(ServerProcess):
    """``strongroom server`` started through ``bench/tail_probe.py`` by ``python``."""

    def __init__(self, python: str, data_dir: Path, *args: str, env: dict[str, str]) -> None:
        super().__init__(data_dir, *args, env=env)
        self.python = python

    def command(self) -> list[str]:
        base = super().command()
        return [self.python, str(PROBE), *base[3:]]  # drop "python -m strongroom.cli"


@dataclass
class Variant:
    """One server under test."""

    key: str
    python: str
    env: dict[str, str] = field(default_factory=dict)
    target: Target | None = None
    probe_dir: Path | None = None


@contextlib.contextmanager
def started(variant: Variant, base: Path, workers: int) -> Iterator[Variant]:
    """Run ``variant``'s server until the block ends."""
    probe_dir = base / f"probe-{variant.key}"
    probe_dir.mkdir()
    env = dict(os.environ, STRONGROOM_TAIL_PROBE=str(probe_dir), **variant.env)
    server = _ProbedServer(
        variant.python, base / variant.key, "--workers", str(workers), env=env
    ).start()
    try:
        info = server.info()
        assert server.process is not None
        variant.target = Target(
            variant.key,
            variant.key,
            info.endpoint_url,
            info.credentials,
            str(info.ca_bundle) if info.ca_bundle else None,
            server.process.pid,
        )
        variant.probe_dir = probe_dir
        prepare_bodies(variant.target)
        yield variant
    finally:
        server.close()


# --- what the workers report ----------------------------------------------------------


def probe(variant: Variant, pids: list[int]) -> dict[int, dict[str, Any]]:
    """Every worker's probe counters so far (SIGUSR1, then read the file each writes)."""
    assert variant.probe_dir is not None
    asked = time.time()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)
    found: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 5
    while len(found) < len(pids) and time.monotonic() < deadline:
        for pid in pids:
            path = variant.probe_dir / f"{pid}.json"
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text())
                if data["time"] >= asked - 0.01:
                    found[pid] = data
        time.sleep(0.02)
    return found


def wait_for_quiet(threshold: float, patience: float) -> None:
    """Wait (at most ``patience`` s) until other work keeps fewer than ``threshold`` cores busy."""
    start = time.monotonic()
    while time.monotonic() - start < patience:
        before, t0 = machine_busy(), time.monotonic()
        time.sleep(0.5)
        if (machine_busy() - before) / (time.monotonic() - t0) < threshold:
            return


def measure(variant: Variant, operation: str, round_no: int, args: argparse.Namespace) -> Cell:
    target = variant.target
    assert target is not None
    if args.quiet_wait:
        wait_for_quiet(args.quiet_below, args.quiet_wait)
    run_wrk(target, operation, args.connections, args.warmup)
    pids = workers_of(target.root_pid)
    port = int(target.endpoint.rsplit(":", 1)[1])
    before_probe = probe(variant, pids)
    before = {pid: thread_sched(pid) for pid in pids}
    cpu0, busy0, wall0 = (
        process_sched(process_tree(target.root_pid)),
        machine_busy(),
        time.monotonic(),
    )
    client0 = os.times()
    perf_data = Path(tempfile.gettempdir()) / f"kms-api-tail-{os.getpid()}.perf"
    summary, wrk_waits, seen = run_wrk(
        target,
        operation,
        args.connections,
        args.duration,
        during=lambda: (
            connection_split(port, pids),
            perf_sched_record(args.perf_sched, perf_data) if args.perf_sched else False,
        ),
    )
    split, recorded = seen
    sched = perf_sched_waits(perf_data, pids) if recorded else None
    perf_data.unlink(missing_ok=True)
    client1 = os.times()
    cpu1, busy1, wall1 = (
        process_sched(process_tree(target.root_pid)),
        machine_busy(),
        time.monotonic(),
    )
    server_cpu = sum(s.cpu for s in cpu1) - sum(s.cpu for s in cpu0)
    wrk_cpu = (client1.children_user + client1.children_system) - (
        client0.children_user + client0.children_system
    )
    after = {pid: thread_sched(pid) for pid in pids}
    after_probe = probe(variant, pids)
    loop_wait = other_wait = 0.0
    loop_n = 0
    for pid in pids:
        for tid, (name, wait, n) in after[pid].items():
            old = before[pid].get(tid, (name, 0.0, 0))
            if tid == pid:  # the event loop runs on the main thread
                loop_wait += wait - old[1]
                loop_n += n - old[2]
            else:
                other_wait += wait - old[1]
    probes = probe_delta(before_probe, after_probe)
    probes["gc_unfrozen"] = [after_probe[pid].get("gc_unfrozen") for pid in after_probe]
    probes["gc_frozen"] = [after_probe[pid].get("gc_frozen") for pid in after_probe]
    probes["full_gc_ms"] = [
        round(after_probe[pid]["full_gc_s"] * 1000, 2)
        for pid in after_probe
        if "full_gc_s" in after_probe[pid]
    ]
    return Cell(
        variant=variant.key,
        operation=operation,
        round=round_no,
        rps=summary["rps"],
        latency_ms={
            **{f"p{p}": summary[f"p{p}".replace(".", "_")] for p in PERCENTILES},
            "max": summary["max"],
        },
        errors=summary["errors"] + summary["non2xx"],
        split=split or [],
        loop_wait_s=loop_wait,
        loop_waits=loop_n,
        other_threads_wait_s=other_wait,
        wrk_wait_s=sum(w for _, w, _ in wrk_waits.values()),
        wrk_waits=sum(n for _, _, n in wrk_waits.values()),
        seconds=summary["seconds"],
        probes=probes,
        sched=sched,
        server_cores=server_cpu / (wall1 - wall0),
        other_cores=max(0.0, (busy1 - busy0) - server_cpu - wrk_cpu) / (wall1 - wall0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, duration=5.0, rounds=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--operations",
        nargs="+",
        default=["Decrypt"],
        choices=("Decrypt", "Encrypt", "GenerateDataKey"),
    )
    parser.add_argument("--compare", metavar="PYTHON", help="another checkout's interpreter")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE,...",
        help="this checkout's server with extra environment (repeatable)",
    )
    parser.add_argument("--no-this", action="store_true", help="leave out the plain 'this'")
    parser.add_argument(
        "--perf-sched",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="record the scheduler this long in each cell (perf sched) and say what the "
        "loop threads and wrk waited behind",
    )
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args()
    if args.perf_sched and args.perf_sched > args.duration - 2:
        parser.error("--perf-sched must leave 2 s of the cell: at most --duration minus 2")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    variants = [] if args.no_this else [Variant("this", sys.executable)]
    if args.compare:
        variants.append(Variant("compare", args.compare))
    for spec in args.variant:
        name, _, assignments = spec.partition(":")
        env = dict(a.split("=", 1) for a in assignments.split(",") if a)
        variants.append(Variant(name, sys.executable, env))
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    cells: list[Cell] = []
    with (
        tempfile.TemporaryDirectory(prefix="kms-api-tail-") as base,
        contextlib.ExitStack() as stack,
    ):
        for variant in variants:
            stack.enter_context(started(variant, Path(base), args.workers))
            print(
                f"{variant.key}: {variant.target.endpoint if variant.target else '?'}", flush=True
            )
        for round_no in range(args.rounds):
            for operation in args.operations:
                shift = round_no % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    cell = measure(variant, operation, round_no, args)
                    cells.append(cell)
                    print(line(cell), flush=True)
    section = render(cells, variants, args)
    print()
    print(section)
    if args.raw:
        args.raw.write_text(json.dumps([c.__dict__ for c in cells], indent=1))
    if args.write:
        bench_doc.write_section(section, HEADING)


if __name__ == "__main__":
    main()
