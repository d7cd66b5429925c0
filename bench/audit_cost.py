"""What the keyed audit chain costs per call: the same calls with an unkeyed and a keyed log.

Two key services over SQLite in one process, side by side, the runs interleaved (A, B, A,
B...) so load on the machine falls on both alike: one with the audit log as it was before
issue 14 (unkeyed SHA-256 chain, no checkpoints, no continuity check), one as
``strongroom.deployment.open_service`` builds it now (HMAC-SHA256 chain under the audit
key, a signed checkpoint file every 2 seconds, the continuity check in each append).
Each run is ``--calls`` calls through ``KeyService.call`` then the audit flush, timed
per CPU-second of the benchmark thread. Results replace the section "Keyed audit cost" of
``docs/benchmarks.md``.

Example::

    python bench/audit_cost.py                # 20,000 calls x 7 runs per side
    python bench/audit_cost.py --quick --no-write
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import bench_doc

from strongroom.audittrail import CheckpointFile
from strongroom.kms import Caller, KeyService, SystemClock
from strongroom.kms.audit_key import open_audit_chain
from strongroom.kms.audit_log import AuditLog
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller

SECTION = "## Keyed audit cost, in-process (bench/audit_cost.py)"
OPERATIONS = ("Decrypt", "Encrypt")


@contextmanager
def service(base: Path, keyed: bool) -> Iterator[KeyService]:
    """A key service over SQLite with the unkeyed (before) or keyed (now) audit log."""
    base.mkdir()
    store = SqliteStore(base / "bench.db")
    root = LocalRootOfTrust.create(base / "master.key")
    clock = SystemClock()
    audit = AuditLog(store, clock)
    if keyed:
        chain, _ = open_audit_chain(store, root)
        audit = AuditLog(store, clock, chain, CheckpointFile(base, chain))
    svc = KeyService(store, root, clock, audit_log=audit)
    try:
        yield svc
    finally:
        svc.close()


def requests_for(svc: KeyService, caller: Caller) -> dict[str, dict[str, Any]]:
    key_id = svc.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
    blob = svc.call(caller, "Encrypt", {"KeyId": key_id, "Plaintext": b"k" * 32})
    return {
        "Encrypt": {"KeyId": key_id, "Plaintext": b"k" * 32},
        "Decrypt": {"CiphertextBlob": blob["CiphertextBlob"]},
    }


def cpu_rate(svc: KeyService, caller: Caller, operation: str, request: Any, calls: int) -> float:
    """Calls per CPU-second of this thread, the final audit flush included."""
    call = svc.call
    start = time.thread_time()
    for _ in range(calls):
        call(caller, operation, request)
    svc.audit.flush()
    return calls / (time.thread_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 calls x 3 runs")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per run")
    parser.add_argument("--runs", type=int, default=7, help="runs per side (median)")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.runs = 3_000, 3
    rows = []
    with ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="audit-bench-")))
        before = stack.enter_context(service(base / "before", keyed=False))
        after = stack.enter_context(service(base / "after", keyed=True))
        callers = {id(s): tenant_caller(s, "bench") for s in (before, after)}
        requests = {id(s): requests_for(s, callers[id(s)]) for s in (before, after)}
        for operation in OPERATIONS:
            rates: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(args.runs + 1):  # the first pair warms up and is dropped
                for name, svc in (("before", before), ("after", after)):
                    request = requests[id(svc)][operation]
                    rate = cpu_rate(svc, callers[id(svc)], operation, request, args.calls)
                    rates[name].append(rate)
            a = statistics.median(rates["before"][1:])
            b = statistics.median(rates["after"][1:])
            cost_us = (1 / b - 1 / a) * 1e6
            rows.append((operation, a, b, b / a, cost_us))
            print(f"{operation}: {a:,.0f} -> {b:,.0f} per CPU-s ({b / a:.3f}x, {cost_us:+.2f} µs)")
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/audit_cost.py", *sys.argv[1:]])
    lines = [
        SECTION,
        f"Command: `{command}` ({datetime.date.today().isoformat()}). Machine: "
        f"{bench_doc.machine()}; load average {bench_doc.load_average()}.",
        "",
        f"SQLite, one thread through `KeyService.call`, {args.calls:,} calls per run then the "
        f"audit flush, median of {args.runs} runs per side, the two sides interleaved. "
        "*Before*: the unkeyed SHA-256 chain (no checkpoints). *Keyed*: HMAC-SHA256 under "
        "the audit key, the continuity check in each append and a signed checkpoint file "
        "every 2 s, as the server runs it.",
        "",
        "| operation | before (per CPU-s) | keyed (per CPU-s) | ratio | cost per call |",
        "|---|---:|---:|---:|---:|",
    ]
    for operation, a, b, ratio, cost in rows:
        lines.append(f"| {operation} | {a:,.0f} | {b:,.0f} | {ratio:.3f} | {cost:+.2f} µs |")
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_write:
        bench_doc.write_section(section, SECTION)
        print(f"wrote {bench_doc.DOC}")


if __name__ == "__main__":
    main()
