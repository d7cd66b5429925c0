"""What sealed store rows (trusted metadata) cost: this tree against a baseline, side by side.

Every record of the key store carries a MAC (``strongroom.ports.row_mac``) checked on
every read. This benchmark runs the same in-process key service workload
(``bench/kms_core.py``'s ``bench_ops`` on SQLite: Encrypt, Decrypt, GenerateDataKey) with
the code of a baseline commit (before rows were sealed; extracted with ``git archive``)
and with this tree, in alternating child processes, round after round, and reports
operations per CPU-second of the benchmark thread (medians, robust on a shared machine)
and their ratio. Two settings: the service's default record cache (key and alias records
are re-read at most once a second: the hot path) and the cache off (``key_record_ttl_s=0``:
every call reads and verifies its key record, the worst case). It also times one
seal and one open of a typical key record.

Results replace the section "Trusted metadata: row MACs" of ``docs/benchmarks.md``.

Examples::

    python bench/row_mac.py                       # 7 rounds, writes docs/benchmarks.md
    python bench/row_mac.py --quick --no-write    # a smoke run
    python bench/row_mac.py --baseline 4e3b4a3 --calls 20000
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import bench_doc

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Trusted metadata: row MACs (bench/row_mac.py)"
BASELINE = "4e3b4a3"  # main just before records were sealed
SETTINGS = (("cached", 1.0), ("uncached", 0.0))


def worker(calls: int, runs: int, ttl: float) -> None:
    """In a child process: run kms_core's operations once, print ops per CPU-second as JSON."""
    sys.path.insert(0, str(ROOT / "bench"))
    import kms_core

    from strongroom.kms import KeyService, SystemClock
    from strongroom.rootkey import LocalRootOfTrust
    from strongroom.store import SqliteStore
    from strongroom.testing.service import tenant_caller

    with tempfile.TemporaryDirectory() as base:
        service = KeyService(
            SqliteStore(Path(base) / "bench.db"),
            LocalRootOfTrust.create(Path(base) / "master.key"),
            SystemClock(),
            key_record_ttl_s=ttl,
        )
        try:
            caller = tenant_caller(service, "bench")
            results = kms_core.bench_ops(service, caller, calls, runs)
        finally:
            service.close()
    print(json.dumps({r.operation: r.cpu for r in results}))


def seal_cost() -> dict[str, float]:
    """CPU microseconds to seal a 1 KiB record, to open it the first time, and again."""
    from strongroom.ports.row_mac import StoreSecrets

    secrets = StoreSecrets(os.urandom(32))
    n = 4000  # within what a store remembers as verified
    rows = [
        (("111122223333", "key", f"{i:08d}-12ab-34cd-56ef-1234567890ab"), b"x" * 1024)
        for i in range(n)
    ]
    sealed = [secrets.seal(identity, value) for identity, value in rows]
    costs: dict[str, list[float]] = {"seal_us": [], "open_us": [], "reopen_us": []}
    for _ in range(5):
        fresh = StoreSecrets(os.urandom(32))
        start = time.thread_time()
        for identity, value in rows:
            fresh.seal(identity, value)
        costs["seal_us"].append((time.thread_time() - start) / n * 1e6)
        secrets = StoreSecrets(secrets._master)  # nothing verified yet
        for name in ("open_us", "reopen_us"):
            start = time.thread_time()
            for (identity, _), stored in zip(rows, sealed, strict=True):
                secrets.open(identity, stored)
            costs[name].append((time.thread_time() - start) / n * 1e6)
    return {name: statistics.median(values) for name, values in costs.items()}


def interleaved(calls: int, alternations: int) -> dict[str, dict[str, float]]:
    """In this process: the same service with row MACs and with a no-op seal, batch by batch.

    Both services run this tree's code over their own SQLite file; only the HMAC differs
    (the no-op secrets store values as they are). Batches alternate, so load on a shared
    machine hits both alike; the figure is the median batch's ops per CPU-second.
    """
    sys.path.insert(0, str(ROOT / "bench"))
    import kms_core

    from strongroom.kms import KeyService, SystemClock
    from strongroom.ports.row_mac import StoreSecrets
    from strongroom.ports.sealed_store import SealedStore
    from strongroom.rootkey import LocalRootOfTrust
    from strongroom.store import SqliteStore
    from strongroom.testing.service import tenant_caller

    class NoMac(StoreSecrets):
        """Stores values as they are: the layer without its HMAC (a baseline only)."""

        def seal(self, identity: Sequence[str], value: bytes) -> bytes:
            return value

        def open(self, identity: Sequence[str], stored: bytes) -> bytes:
            return stored

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as base:
        services = {}
        for name, secrets in (
            ("mac", StoreSecrets(os.urandom(32))),
            ("none", NoMac(os.urandom(32))),
        ):
            store = SealedStore(SqliteStore(Path(base) / f"{name}.db"), secrets)
            root = LocalRootOfTrust.create(Path(base) / f"{name}.key")
            services[name] = KeyService(store, root, SystemClock(), key_record_ttl_s=0)
        try:
            callers = {n: tenant_caller(svc, "bench") for n, svc in services.items()}
            requests = {n: kms_core.requests_for(svc, callers[n]) for n, svc in services.items()}
            for operation in kms_core.OPERATIONS:
                samples: dict[str, list[float]] = {"mac": [], "none": []}
                for turn in range(alternations):
                    order = ("mac", "none") if turn % 2 == 0 else ("none", "mac")
                    for name in order:
                        svc, caller = services[name], callers[name]
                        request = requests[name][operation]
                        start = time.thread_time()
                        for _ in range(calls):
                            svc.call(caller, operation, request)
                        svc.audit.flush()
                        samples[name].append(calls / (time.thread_time() - start))
                out[operation] = {n: statistics.median(v) for n, v in samples.items()}
                print(f"interleaved {operation}: {out[operation]}", flush=True)
        finally:
            for svc in services.values():
                svc.close()
    return out


def run_child(src: Path, calls: int, runs: int, ttl: float) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            "--calls",
            str(calls),
            "--runs",
            str(runs),
            "--ttl",
            str(ttl),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def render(
    rows: dict[str, dict[str, dict[str, list[float]]]],
    micro: dict[str, float],
    args: argparse.Namespace,
    paired: dict[str, dict[str, float]],
) -> str:
    lines = [
        SECTION,
        "",
        f"Machine: {bench_doc.machine()}. Load average at the start: {args.load}.",
        f"Command: `python bench/row_mac.py {' '.join(shlex.quote(a) for a in args.argv)}`".rstrip()
        + f" ({args.rounds} rounds of {args.calls:,} calls x {args.runs} runs per operation,"
        " baseline and this tree alternating in fresh processes; SQLite, local root key).",
        "",
        f"Baseline: `{args.baseline}` (records unsealed). Figures are operations per CPU-second "
        "of the benchmark thread, median over rounds; the ratio is this tree / baseline.",
        "",
        "| record cache | operation | baseline ops/CPU-s | sealed rows ops/CPU-s | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for setting, ops in rows.items():
        for op, cells in ops.items():
            base, new = statistics.median(cells["baseline"]), statistics.median(cells["sealed"])
            lines.append(f"| {setting} | {op} | {base:,.0f} | {new:,.0f} | {new / base:.3f} |")
    lines += [
        "",
        "The same in one process, record cache off (every call reads and checks its key "
        "record), with row MACs and with the sealing layer's HMAC replaced by a no-op, "
        f"batches of {args.calls // 5:,} calls alternating ({2 * args.rounds + 1} each): "
        "only the MAC differs, and load hits both alike.",
        "",
        "| operation | no MAC ops/CPU-s | row MACs ops/CPU-s | ratio | MAC cost per call |",
        "|---|---:|---:|---:|---:|",
    ]
    for op, cells in paired.items():
        none, mac = cells["none"], cells["mac"]
        cost = (1 / mac - 1 / none) * 1e6
        lines.append(f"| {op} | {none:,.0f} | {mac:,.0f} | {mac / none:.3f} | {cost:+.1f} µs |")
    if float(args.load.split(",")[0]) > (os.cpu_count() or 1):
        lines += [
            "",
            f"**This run's machine was overloaded** (load average {args.load} on "
            f"{os.cpu_count()} cores, other jobs running): rounds of the same code differed "
            "by up to a quarter, more than any difference above, which goes both ways. The "
            "MAC cost per call is better read from the counts and unit costs below; rerun "
            "on a quiet machine for the side-by-side ratios.",
        ]
    lines += [
        "",
        f"One seal of a 1 KiB record costs {micro['seal_us']:.2f} CPU-µs, one open (the "
        f"check: HMAC-SHA256 over the identity and the value) {micro['open_us']:.2f} µs the "
        f"first time and {micro['reopen_us']:.2f} µs when the same stored bytes are read "
        "again (a verified row is remembered by its bytes, up to 4,096 rows of up to 4 KiB). "
        "Counted per call: with the record cache on (the default: a key or alias record is "
        "re-read at most once a second) Encrypt, Decrypt and GenerateDataKey open 0.002 "
        "records per call; with it off, 1.0 (their key record), which is then the same "
        "bytes as last time.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ttl", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", default=BASELINE, help="commit without sealed rows")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (median)")
    parser.add_argument("--calls", type=int, default=10000, help="calls per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per operation and round")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2,000 calls")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    if args.worker:
        worker(args.calls, args.runs, args.ttl)
        return
    if args.quick:
        args.rounds, args.calls = 3, 2000
    args.argv = sys.argv[1:]
    args.load = bench_doc.load_average()
    with tempfile.TemporaryDirectory() as tmp:
        base_src = Path(tmp)
        archive = subprocess.run(
            ["git", "archive", args.baseline, "src"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base_src)], input=archive, check=True)
        trees = {"baseline": base_src / "src", "sealed": ROOT / "src"}
        rows: dict[str, dict[str, dict[str, list[float]]]] = {}
        for rnd in range(args.rounds):
            for setting, ttl in SETTINGS:
                for name, src in trees.items() if rnd % 2 == 0 else reversed(trees.items()):
                    result = run_child(src, args.calls, args.runs, ttl)
                    for op, value in result.items():
                        cell = rows.setdefault(setting, {}).setdefault(op, {})
                        cell.setdefault(name, []).append(value)
                    print(
                        f"round {rnd + 1} {setting:8s} {name:8s} "
                        + "  ".join(f"{op} {v:,.0f}" for op, v in result.items()),
                        flush=True,
                    )
    micro = seal_cost()
    paired = interleaved(args.calls // 5, 2 * args.rounds + 1)
    text = render(rows, micro, args, paired)
    print(text)
    if not args.no_write:
        bench_doc.write_section(text, SECTION)


if __name__ == "__main__":
    main()
