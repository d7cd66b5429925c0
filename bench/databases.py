"""Databases' key servers: Strongroom's KMIP beside PyKMIP's server, libmongocrypt, MariaDB.

    python bench/databases.py [--rounds 5] [--requests 1600] [--quick] [--no-write]

One run, everything on this machine, rounds alternated (which server goes first flips
every round), medians over rounds:

1. KMIP ``Get`` (32-byte SecretData), ``Encrypt`` and ``Decrypt`` (AES-256-GCM, 64 bytes)
   over TLS with client certificates, each client one connection reused for all its
   requests, at 1 and 8 clients (processes), against ``strongroom kmip`` and PyKMIP 0.11's
   ``pykmip-server`` (both started as their users start them, see ``kmip_servers.py``),
   with the same client code and the same requests (``kmip_load.py``). Throughput is
   requests over wall-clock time from one start signal to the last answer; p50/p99 per
   request; the server's CPU time per request from ``/proc`` (steadier than the clock on
   a shared machine).
2. libmongocrypt against ``strongroom kmip``: data key creation (default flow) and one
   field encrypt+decrypt with an empty data-key cache, a new TLS connection per KMS
   request as pymongo makes them; p50.
3. MariaDB: the same single-client INSERTs (100 rows per COMMIT, and autocommitted) into
   a server with InnoDB encryption on (keys from Strongroom's Vault API) and one without.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_doc import DOC, load_average, machine, write_section
from databases_clients import Driver, MariaPair, mongocrypt_round
from kmip_load import Clients, prepare
from kmip_servers import KmipTarget, pykmip_server, strongroom_kmip
from kms_api_servers import machine_busy, process_sched

HEADING = "## Databases (KMIP front-end, libmongocrypt, MariaDB)"
OPERATIONS = ("Get", "Encrypt", "Decrypt")
CLIENTS = (1, 8)
SHAPES = ((1, False), (8, False))
"""(connections, all from one process?): 1 client, 8 client processes (``--one-process``:
8 connections of one asyncio process instead)."""


@dataclass(slots=True)
class Cell:
    """One server, operation and client count in one round."""

    server: str
    op: str
    clients: int
    one_process: bool
    round: int
    rps: float
    p50: float
    p99: float
    cpu_us: float
    wait_us: float


def wait_for_quiet(threshold: float, patience: float) -> float:
    """Wait (at most ``patience`` s) for the machine's busy cores to drop below ``threshold``.

    Between cells the servers idle, so what keeps the cores busy then is other work; a
    cell started in the middle of it measures that work as much as the servers. Returns
    the seconds waited.
    """
    start = time.monotonic()
    while patience > 0:
        before, t0 = machine_busy(), time.monotonic()
        time.sleep(0.5)
        busy = (machine_busy() - before) / (time.monotonic() - t0)
        if busy < threshold or time.monotonic() - start >= patience:
            break
    return time.monotonic() - start


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def kmip_rounds(
    targets: list[KmipTarget], clients: Clients, options: argparse.Namespace
) -> list[Cell]:
    """Every cell, ``rounds`` times, the servers' order flipped each round."""
    messages = {t.name: prepare(t) for t in targets}
    cells = []
    requests = options.requests
    for number in range(options.rounds):
        order = targets if number % 2 == 0 else targets[::-1]
        for op in OPERATIONS:
            for k, together in shapes(options):
                wait_for_quiet(options.quiet_below, options.quiet_wait)
                for target in order:
                    before: list[object] = []
                    run = clients.run(
                        target,
                        messages[target.name][op],
                        k,
                        requests,
                        on_go=lambda b=before, t=target: b.append(process_sched([t.pid])[0]),
                        one_process=together,
                    )
                    cpu, waited = process_sched([target.pid])[0].since(before[0])  # type: ignore[arg-type]
                    lat = run.latencies
                    cell = Cell(
                        target.name,
                        op,
                        k,
                        together,
                        number,
                        run.rps,
                        _percentile(lat, 0.5) * 1000,
                        _percentile(lat, 0.99) * 1000,
                        cpu / len(lat) * 1e6,
                        waited / len(lat) * 1e6,
                    )
                    cells.append(cell)
                    print(
                        f"round {number} {target.name:10} {op:7} x{k}{'c' if together else 'p'}: "
                        f"{cell.rps:7,.0f} req/s "
                        f"p50 {cell.p50:6.2f} p99 {cell.p99:6.2f} ms, "
                        f"server CPU {cell.cpu_us:5.0f} us/req, waited {cell.wait_us:5.0f}",
                        flush=True,
                    )
    return cells


def shapes(options: argparse.Namespace) -> tuple[tuple[int, bool], ...]:
    """The client shapes of this run."""
    return tuple((k, k > 1 and options.one_process) for k, _ in SHAPES)


def _median(cells: list[Cell], attr: str) -> float:
    return statistics.median(getattr(c, attr) for c in cells)


def kmip_table(cells: list[Cell], options: argparse.Namespace) -> list[str]:
    """The KMIP rows: medians per server, and Strongroom over PyKMIP in the same round."""
    lines = [
        "| operation | clients | Strongroom req/s | PyKMIP req/s | ratio (median of rounds) "
        "| Strongroom p50 / p99 ms | PyKMIP p50 / p99 ms | server CPU us/req (SR / PyKMIP) "
        "| Strongroom run-queue wait us/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in OPERATIONS:
        for k, together in shapes(options):
            mine = [c for c in cells if (c.op, c.clients, c.one_process) == (op, k, together)]
            sr = [c for c in mine if c.server == "Strongroom"]
            py = [c for c in mine if c.server == "PyKMIP"]
            shape = (
                "1"
                if k == 1
                else f"{k} ({'connections of 1 process' if together else 'processes'})"
            )
            base = {c.round: c.rps for c in py}
            ratio = statistics.median(c.rps / base[c.round] for c in sr if c.round in base)
            lines.append(
                f"| {op} | {shape} | {_median(sr, 'rps'):,.0f} | {_median(py, 'rps'):,.0f} "
                f"| {ratio:.1f}x | {_median(sr, 'p50'):.2f} / {_median(sr, 'p99'):.2f} "
                f"| {_median(py, 'p50'):.2f} / {_median(py, 'p99'):.2f} "
                f"| {_median(sr, 'cpu_us'):,.0f} / {_median(py, 'cpu_us'):,.0f} "
                f"| {_median(sr, 'wait_us'):,.0f} |"
            )
    return lines


def mongocrypt(
    target: KmipTarget, samples: int, options: argparse.Namespace
) -> tuple[float, float, float, float]:
    """p50 of data key creation and of one field round trip (ms), and the server's CPU and
    run-queue wait per data key plus round trip (ms)."""
    driver = Driver(target)
    mongocrypt_round(target, driver)  # warm: the first data key of a tenant, imports
    pairs = []
    cpu = waited = 0.0
    for _ in range(samples):
        wait_for_quiet(options.quiet_below, options.quiet_wait / 4)
        before = process_sched([target.pid])[0]
        pairs.append(mongocrypt_round(target, driver))
        used, queued = process_sched([target.pid])[0].since(before)
        cpu, waited = cpu + used, waited + queued
    return (
        statistics.median(p[0] for p in pairs) * 1000,
        statistics.median(p[1] for p in pairs) * 1000,
        cpu / samples * 1000,
        waited / samples * 1000,
    )


@dataclass(frozen=True, slots=True)
class MariaResult:
    """Medians over rounds: rows/s and mariadbd CPU per row, encryption on and off."""

    on_rps: float
    off_rps: float
    ratio: float
    on_cpu_us: float
    off_cpu_us: float
    cpu_ratio: float


WORKLOADS = ((100, 1), (1, 5))
"""(rows per COMMIT, divisor of --rows): batches of 100, and autocommit with a fifth the rows."""


def mariadb_rounds(
    base: Path, rounds: int, rows: int, quiet: tuple[float, float]
) -> dict[int, MariaResult]:
    """Per workload, alternated rounds of the same INSERTs into both servers."""
    pair = MariaPair(base)
    try:
        for db in (pair.on, pair.off):
            pair.inserts(db, min(rows, 1000), 100)  # warm up
        return {
            per: _maria_workload(pair, rounds, rows // divisor, per, quiet)
            for per, divisor in WORKLOADS
        }
    finally:
        pair.close()


def _maria_workload(
    pair: MariaPair, rounds: int, rows: int, per: int, quiet: tuple[float, float]
) -> MariaResult:
    on, off, on_cpu, off_cpu = [], [], [], []
    for number in range(rounds):
        wait_for_quiet(quiet[0], quiet[1])
        order = [pair.on, pair.off] if number % 2 == 0 else [pair.off, pair.on]
        measured = {id(db): pair.inserts(db, rows, per) for db in order}
        (s_on, c_on), (s_off, c_off) = measured[id(pair.on)], measured[id(pair.off)]
        on.append(rows / s_on)
        off.append(rows / s_off)
        on_cpu.append(c_on / rows * 1e6)
        off_cpu.append(c_off / rows * 1e6)
        print(
            f"round {number} MariaDB {per}/COMMIT rows/s on {on[-1]:,.0f} off {off[-1]:,.0f}; "
            f"mariadbd CPU us/row on {on_cpu[-1]:.1f} off {off_cpu[-1]:.1f}",
            flush=True,
        )
    median = statistics.median
    return MariaResult(
        median(on),
        median(off),
        median(a / b for a, b in zip(on, off, strict=True)),
        median(on_cpu),
        median(off_cpu),
        median(a / b for a, b in zip(on_cpu, off_cpu, strict=True)),
    )


def main() -> None:
    """Run everything, print the section and write it to docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per cell (alternated)")
    parser.add_argument("--requests", type=int, default=1600, help="requests per cell")
    parser.add_argument("--rows", type=int, default=5000, help="MariaDB rows per round")
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer requests")
    parser.add_argument("--no-mariadb", action="store_true", help="skip MariaDB")
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="8 connections from one asyncio client process instead of 8 client processes",
    )
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md")
    parser.add_argument(
        "--quiet-below", type=float, default=0.5, help="busy cores (others' work) to wait for"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=10.0, help="most seconds to wait before a cell"
    )
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.requests, options.rows = 2, 400, 1000
    command = "python bench/databases.py" + "".join(
        f" {a}" for a in sys.argv[1:] if a != "--no-write"
    )
    load_before = load_average()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        with strongroom_kmip(base) as strongroom, pykmip_server(base) as pykmip:
            clients = Clients(max(k for k, _ in SHAPES))
            try:
                cells = kmip_rounds([strongroom, pykmip], clients, options)
            finally:
                clients.close()
            create, trip, key_cpu, key_wait = mongocrypt(
                strongroom, max(10, options.rounds * 4), options
            )
        quiet = (options.quiet_below, options.quiet_wait)
        maria = (
            None
            if options.no_mariadb
            else mariadb_rounds(base, options.rounds * 2, options.rows, quiet)
        )
    lines = [
        HEADING,
        "",
        f"Command: `{command}`. Machine: {machine()}; load average {load_before} before "
        f"the run, {load_average()} after ({time.monotonic() - started:.0f} s). Medians of "
        f"{options.rounds} alternated rounds, {options.requests} requests per cell; before "
        f"each cell the run waits up to {options.quiet_wait:.0f} s for other work on the "
        f"machine to drop below {options.quiet_below} busy cores.",
        "",
        "KMIP over TLS with client certificates, one connection per client reused for every "
        "request, the same client code and requests (KMIP 1.4) against `strongroom kmip` "
        "and PyKMIP 0.11's `pykmip-server` (TLS 1.2 suite, SQLite, a policy directory):",
        "",
        *kmip_table(cells, options),
        "",
        "Run-queue wait: time the scheduler kept the ready server thread off every core "
        "(`/proc/PID/task/*/schedstat`), i.e. the machine's other work; at 8 clients the "
        "client processes themselves take the cores too, and the p99 follows the run queue.",
        "",
        "libmongocrypt (pymongocrypt) against `strongroom kmip`, a new TLS connection per KMS "
        f"request as pymongo makes them: data key creation p50 {create:.1f} ms (default flow: "
        f"Register, Activate, Get), one field encrypt+decrypt with an empty data-key cache "
        f"p50 {trip:.1f} ms. Per data key and round trip (5 connections, 2 durable commits: "
        f"Register and Activate) the server used {key_cpu:.1f} ms of CPU and waited "
        f"{key_wait:.1f} ms for a core; the rest is the client's TLS handshakes, fsync "
        "(`synchronous=FULL`: an acknowledged Register or Activate survives a power cut) and "
        "the machine's run queue.",
    ]
    if maria is not None:
        lines += [
            "",
            "MariaDB 10.11 (Debian), one client, single-row INSERTs, the configuration of "
            "docs/mariadb.md: InnoDB encryption on (tables, redo log, temporary tables; keys "
            "from Strongroom's Vault API via `hashicorp_key_management`) vs off, medians of "
            f"{options.rounds * 2} alternated rounds ({options.rows} rows per round in batches, "
            f"{options.rows // 5} autocommitted):",
            "",
            "| rows per COMMIT | rows/s on | rows/s off | on / off | mariadbd CPU us/row on "
            "| off | on / off |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {per} | {m.on_rps:,.0f} | {m.off_rps:,.0f} | {m.ratio:.2f} "
            f"| {m.on_cpu_us:.1f} | {m.off_cpu_us:.1f} | {m.cpu_ratio:.2f} |"
            for per, m in maria.items()
        ]
    section = "\n".join(lines) + "\n"
    print(section)
    if not options.no_write:
        write_section(section, HEADING)
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
