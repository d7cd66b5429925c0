"""The results of ``bench/kms_api.py``: one measured cell, and its section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bench_doc

ROOT = Path(__file__).resolve().parent.parent
DOC = bench_doc.DOC
SECTION = "## AWS KMS API (strongroom server vs moto)"
OPERATIONS = ("Decrypt", "Encrypt", "GenerateDataKey")
CONNECTIONS = (1, 16, 64)
BASELINE = "moto"
LOCALSTACK = "localstack"
TWO_WORKERS = "sr2"
COMPARED = "srbase"
"""The strongroom of another checkout (``--compare``), 2 workers."""
TARGET_RATIO = 5.0
TARGET_RPS = 4000.0
TARGET_P99_MS = 10.0
# issue 19, two workers over HTTPS
FAST_DECRYPT_RPS = 20_000.0
FAST_OTHER_RPS = 15_000.0
FAST_P99_MS = 5.0
FAST_RATIO = 1.5


@dataclass
class Cell:
    """One measured run: a server, an operation, a number of connections, a round."""

    target: str
    operation: str
    connections: int
    round: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    non200: int
    server_cpu: float
    server_wait: float
    client_cpu: float
    machine_cpu: float
    wall: float
    quiet_wait: float = 0.0
    process_cpu: list[float] = field(default_factory=list)
    server_preempted: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def others_cores(self) -> float:
        """Cores' worth of CPU that neither this server nor the client used meanwhile."""
        return max(0.0, self.machine_cpu - self.server_cpu - self.client_cpu) / self.wall

    def line(self, label: str) -> str:
        per = self.server_cpu / self.requests * 1e6 if self.requests else float("nan")
        return (
            f"  r{self.round} {self.operation:15s} c={self.connections:<3d} {label:34s} "
            f"{self.rps:8,.0f} req/s  p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms  "
            f"server {per:5.0f} us/req, ran {self.server_cpu / self.wall:.2f} waited "
            f"{self.server_wait / self.wall:.2f} cores, "
            f"{self.server_preempted / max(1, self.requests):.2f} preemptions/req  "
            f"others {self.others_cores:.2f} cores  "
            f"errors {self.errors} non-200 {self.non200}"
        )


Grid = dict[tuple[str, str, int], list[Cell]]


def grid(cells: list[Cell]) -> Grid:
    out: Grid = {}
    for cell in cells:
        out.setdefault((cell.target, cell.operation, cell.connections), []).append(cell)
    return out


def med(cells: list[Cell], value: Callable[[Cell], float]) -> float:
    return statistics.median(value(c) for c in cells) if cells else float("nan")


def ratio(
    g: Grid, target: str, operation: str, connections: int, baseline: str = BASELINE
) -> float:
    """Median over rounds of this target's req/s over moto's (or ``baseline``'s) in one round."""
    values = bench_doc.round_ratios(
        g.get((target, operation, connections), []), g.get((baseline, operation, connections), [])
    )
    return statistics.median(values) if values else float("nan")


def compare_revision(python: str) -> str:
    """``at <short commit>`` of the checkout whose environment ``python`` belongs to."""
    found = subprocess.run(
        [python, "-c", "import strongroom, pathlib; print(pathlib.Path(strongroom.__file__))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not found:
        return "(compared)"
    source = Path(found).parent
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=source,
        check=False,
    ).stdout.strip()
    return f"at {commit}" if commit else "(compared)"


def fast_verdicts(g: Grid, labels: dict[str, str]) -> list[str]:
    """Issue 19's targets for 2 workers over HTTPS, and the ratio to ``--compare``'s server."""
    out = []
    for op, want in (
        ("Decrypt", FAST_DECRYPT_RPS),
        ("Encrypt", FAST_OTHER_RPS),
        ("GenerateDataKey", FAST_OTHER_RPS),
    ):
        rps = med(g.get((TWO_WORKERS, op, 64), []), lambda c: c.rps)
        if _nan(rps):
            continue
        out.append(
            f"- {op} at least {want:,.0f} req/s at 64 connections, 2 workers, HTTPS: "
            f"**{'met' if rps >= want else 'NOT met'}**: {rps:,.0f} req/s."
        )
    p99 = {op: med(g.get((TWO_WORKERS, op, 16), []), lambda c: c.p99_ms) for op in OPERATIONS}
    known = {op: v for op, v in p99.items() if not _nan(v)}
    if known:
        met = "met" if all(v < FAST_P99_MS for v in known.values()) else "NOT met"
        shown = ", ".join(f"{op} {v:.1f} ms" for op, v in known.items())
        out.append(f"- p99 under {FAST_P99_MS:.0f} ms at 16 connections: **{met}**: {shown}.")
    if COMPARED in labels:
        for op in OPERATIONS:
            times = ratio(g, TWO_WORKERS, op, 64, COMPARED)
            if _nan(times):
                continue
            out.append(
                f"- {op} at least {FAST_RATIO:g}x {labels[COMPARED]} (64 connections, per-round "
                f"ratios): **{'met' if times >= FAST_RATIO else 'NOT met'}**: {times:.2f}x."
            )
    for peer in (BASELINE, LOCALSTACK):
        if peer not in labels:
            continue
        mine, mine_n = peak(g, TWO_WORKERS, "Decrypt")
        theirs, theirs_n = peak(g, peer, "Decrypt")
        p99s = med(g.get((peer, "Decrypt", 16), []), lambda c: c.p99_ms)
        out.append(
            f"- Beside {labels[peer]}: Decrypt peaks {mine:,.0f} req/s (at {_conns(mine_n)}) "
            f"against its {theirs:,.0f} (at {_conns(theirs_n)}), {mine / theirs:.1f}x; its "
            f"Decrypt p99 at 16 connections {p99s:.1f} ms."
        )
    return out


def peak(g: Grid, target: str, operation: str) -> tuple[float, int]:
    """The best median req/s over the connection counts, and at how many connections."""
    found = [
        (med(g[(target, operation, n)], lambda c: c.rps), n)
        for n in CONNECTIONS
        if g.get((target, operation, n))
    ]
    return max(found) if found else (float("nan"), 0)


def machine() -> str:
    """The machine line of the report."""
    return bench_doc.machine()


def _run(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    except OSError:
        return ""
    return (done.stdout + done.stderr).strip()


def versions(client: str) -> str:
    from importlib.metadata import version

    commit = _run("git", "rev-parse", "--short", "HEAD") or "?"
    if _run("git", "status", "--porcelain", "--", "src"):
        commit += " plus uncommitted changes in src/"
    tool = "asyncio client of bench/loadgen.py (uvloop)"
    if client == "wrk":
        tool = (_run("wrk", "-v").splitlines() or ["wrk"])[0].split(" [")[0] + ", 1 thread"
    return f"strongroom at {commit}; moto {version('moto')}; client: {tool}"


def _throughput(g: Grid, keys: list[str], labels: dict[str, str]) -> list[str]:
    lines = [
        "| operation | connections | " + " | ".join(labels[k] for k in keys) + " |",
        "|---|---:|" + "---:|" * len(keys),
    ]
    for op in OPERATIONS:
        for n in CONNECTIONS:
            row = []
            for k in keys:
                rps = med(g.get((k, op, n), []), lambda c: c.rps)
                shown = f"{rps:,.0f}"
                if k != BASELINE:
                    shown += f" ({ratio(g, k, op, n):.1f}x)"
                row.append(shown)
            lines.append(f"| {op} | {n} | " + " | ".join(row) + " |")
    return lines


def _per_cell(
    g: Grid, keys: list[str], labels: dict[str, str], show: Callable[[list[Cell]], str]
) -> list[str]:
    lines = [
        "| operation | connections | " + " | ".join(labels[k] for k in keys) + " |",
        "|---|---:|" + "---:|" * len(keys),
    ]
    for op in OPERATIONS:
        for n in CONNECTIONS:
            row = [show(g.get((k, op, n), [])) for k in keys]
            lines.append(f"| {op} | {n} | " + " | ".join(row) + " |")
    return lines


def _latency(cells: list[Cell]) -> str:
    return f"{med(cells, lambda c: c.p50_ms):.2f} / {med(cells, lambda c: c.p99_ms):.1f}"


def _cpu(cells: list[Cell]) -> str:
    server = med(cells, lambda c: c.server_cpu / max(1, c.requests) * 1e6)
    client = med(cells, lambda c: c.client_cpu / max(1, c.requests) * 1e6)
    return f"{server:,.0f} + {client:,.0f}"


def _sched(cells: list[Cell]) -> str:
    ran = med(cells, lambda c: c.server_cpu / c.wall)
    if cells and cells[0].target == BASELINE:
        return f"{ran:.2f} / n/a"
    waited = med(cells, lambda c: c.server_wait / c.wall)
    preempted = med(cells, lambda c: c.server_preempted / max(1, c.requests))
    return f"{ran:.2f} / {waited:.2f} / {preempted:.2f}"


def _conns(n: int) -> str:
    return f"{n} connection" + ("" if n == 1 else "s")


def _nan(value: float) -> bool:
    return value != value


def verdicts(g: Grid, labels: dict[str, str]) -> list[str]:
    """The issue's three targets, each said to be met or not, with the figures."""
    out = []
    none = "**no cells to judge by**."
    moto_peak, moto_n = peak(g, BASELINE, "Decrypt")
    for key in [k for k in (TWO_WORKERS, "sr1") if k in labels]:
        head = f"- At least {TARGET_RATIO:.0f}x moto's Decrypt throughput, {labels[key]}: "
        rps, n = peak(g, key, "Decrypt")
        times = rps / moto_peak if moto_peak else float("nan")
        if _nan(times):
            out.append(head + none)
            continue
        out.append(
            head + f"**{'met' if times >= TARGET_RATIO else 'NOT met'}**: peak {rps:,.0f} "
            f"req/s (at {_conns(n)}) against moto's {moto_peak:,.0f} (at {_conns(moto_n)}), "
            f"{times:.1f}x."
        )
    head = f"- At least {TARGET_RPS:,.0f} Decrypt requests/s with two workers: "
    rps, n = peak(g, TWO_WORKERS, "Decrypt")
    if _nan(rps):
        out.append(head + none)
    else:
        out.append(
            head + f"**{'met' if rps >= TARGET_RPS else 'NOT met'}**: {rps:,.0f} req/s at "
            f"best (at {_conns(n)})."
        )
    for key in [k for k in (TWO_WORKERS, "sr1") if k in labels]:
        head = f"- p99 under {TARGET_P99_MS:.0f} ms at 16 connections, {labels[key]}: "
        p99 = {op: med(g.get((key, op, 16), []), lambda c: c.p99_ms) for op in OPERATIONS}
        known = {op: v for op, v in p99.items() if not _nan(v)}
        if not known:
            out.append(head + none)
            continue
        met = "met" if all(v < TARGET_P99_MS for v in known.values()) else "NOT met"
        shown = ", ".join(f"{op} {v:.1f} ms" for op, v in known.items())
        missing = [op for op in p99 if op not in known]
        out.append(
            head
            + f"**{met}**: {shown}"
            + (f" (no cell for {', '.join(missing)})" if missing else "")
            + "."
        )
    return out


def _quiet_verdicts(
    quiet: list[Cell], cells: list[Cell], labels: dict[str, str], below: float
) -> list[str]:
    head = (
        f"The same, judged only by the {len(quiet)} of {len(cells)} cells during which other "
        f"work kept fewer than {below:g} cores busy"
    )
    if not quiet:
        return [head + ": none (the machine was never that quiet during a cell).", ""]
    return [
        head + " (medians over those cells; peaks compared whatever the round):",
        "",
        *verdicts(grid(quiet), labels),
        "",
    ]


def _ceiling(g: Grid) -> str:
    cells = g.get((TWO_WORKERS, "Decrypt", 64), [])
    per_request = med(cells, lambda c: (c.server_cpu + c.client_cpu) / max(1, c.requests))
    cores = os.cpu_count() or 1
    return (
        f"CPU-bound ceiling of 2 workers on Decrypt if the {cores} cores were the benchmark's "
        f"alone: {cores} / (server + client CPU-seconds per request at 64 connections) = "
        f"{cores / per_request:,.0f} req/s (an estimate, not a measurement)."
    )


def _balance(cells: list[Cell]) -> str:
    busy = [c for c in cells if c.target == TWO_WORKERS and c.connections > 1 and c.server_cpu]
    shares = [max(c.process_cpu) / c.server_cpu for c in busy]
    if not shares:
        return ""
    return (
        f"With 2 workers the busiest process did {statistics.median(shares):.0%} of the "
        f"server's CPU (median over the 16- and 64-connection cells; 50% is an even split)."
    )


def render(
    cells: list[Cell],
    labels: dict[str, str],
    args: argparse.Namespace,
    client: str,
    load_before: tuple[float, float, float],
) -> str:
    g = grid(cells)
    keys = [k for k in labels if k == BASELINE] + [k for k in labels if k != BASELINE]
    today = datetime.date.today().isoformat()
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/kms_api.py", *sys.argv[1:]])
    load = ", ".join(f"{x:.1f}" for x in load_before)
    load_after = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    others = [c.others_cores for c in cells]
    quiet = [c for c in cells if c.others_cores < args.quiet_below]
    gave_up = sum(1 for c in cells if args.quiet_wait and c.quiet_wait >= args.quiet_wait)
    waited = sum(c.quiet_wait for c in cells)
    errors = sum(c.errors for c in cells)
    non200 = sum(c.non200 for c in cells)
    bad = sorted(
        {
            f"{labels[c.target]} {c.operation} c={c.connections}"
            for c in cells
            if c.errors or c.non200
        }
    )
    lines = [
        SECTION,
        f"Command: `{command}` ({today}). Machine: {machine()}. {versions(client)}. "
        f"Load average (1, 5, 15 min) {load} before the run, {load_after} after it.",
        "",
        f"Each cell: {args.warmup:g} s warm-up, then {args.duration:g} s measured, one "
        f"SigV4-signed request (signed once per cell with botocore's `SigV4Auth`) replayed "
        f"on N keep-alive connections; {args.rounds} round(s) with the servers interleaved; "
        f"medians over the rounds. Ratios (in parentheses) are medians of the per-round "
        f"ratios to moto at the same operation and connections. strongroom runs its "
        f"defaults: SigV4 verified on every request, audit log on (batched every 0.2 s), "
        f"SQLite store, local root key; HTTPS with the instance CA unless marked plain "
        f"HTTP. moto serves plain HTTP only (no TLS), so it does not pay for TLS; its "
        f"server (Werkzeug's) closes the connection after every response, so against moto "
        f"the client opens a new TCP connection per request (wrk does that by itself), and "
        f"that connect is in moto's latency and CPU, as it is for any client of moto. "
        f"{_localstack_note(labels, args)}",
        "",
        "Requests per second (median):",
        "",
        *_throughput(g, keys, labels),
        "",
        "Latency, p50 / p99 in ms (median over rounds):",
        "",
        *_per_cell(g, keys, labels, _latency),
        "",
        "CPU per request in µs, server (all its processes) + load generator:",
        "",
        *_per_cell(g, keys, labels, _cpu),
        "",
        "Server processes: cores' worth of time they ran on a CPU / waited, ready to run, "
        "for a CPU (scheduler run-queue wait from `/proc/PID/task/*/schedstat`; a large wait "
        "means the server was held back by other work on the machine, not by itself; moto "
        "serves each connection on a thread that ends with it, which takes its wait along) / "
        "times per request the scheduler took a core from one of their threads "
        "(involuntary context switches, `/proc/PID/task/*/status`; with wrk on the same "
        "cores, mostly wrk woken by an answer):",
        "",
        *_per_cell(g, keys, labels, _sched),
        "",
        "Targets (issue 19, on the 2-core machine):",
        "",
        *fast_verdicts(g, labels),
        "",
        "Targets (issue 3):",
        "",
        *verdicts(g, labels),
        "",
        *_quiet_verdicts(quiet, cells, labels, args.quiet_below),
        f"Errors: {errors} socket errors and {non200} non-200 responses in all cells"
        + (f" (in: {'; '.join(bad)})." if bad else "."),
        f"Nothing is pinned: the servers and the load generator share the {os.cpu_count()} "
        f"cores (the client's CPU is in the table above). Other work on the machine used "
        f"{statistics.median(others):.2f} cores (median over cells; max "
        f"{max(others):.2f}) while cells ran; before each cell the run waited up to "
        f"{args.quiet_wait:g} s for other work to drop under {args.quiet_below:g} cores "
        f"({waited:,.0f} s of waiting in all; {gave_up} cells started without that). Other "
        f"work takes cores from the servers (see the wait above) and the client, so "
        f"throughput is lower and tail latency higher than on an idle machine. "
        f"{_ceiling(g)} {_balance(cells)}",
    ]
    return "\n".join(lines) + "\n"


def _localstack_note(labels: dict[str, str], args: argparse.Namespace) -> str:
    missing = getattr(args, "localstack_missing", None)
    if missing:
        return f"LocalStack was left out of this run: {missing}."
    if "localstack" not in labels:
        return "LocalStack was not asked for (`--no-localstack`)."
    return (
        f"{labels['localstack'].split(',')[0]} runs its KMS alone (`SERVICES=kms`) from "
        "the `localstack-core` package on the host (the same runtime its container image "
        "runs), made by `bench/localstack_peer.py`; it serves HTTPS with its own "
        "self-signed certificate and keeps connections alive."
    )


def write_doc(section: str, path: Path) -> None:
    """Replace this benchmark's section (its heading to the next ``## ``), or append it."""
    bench_doc.write_section(section, SECTION, path)
