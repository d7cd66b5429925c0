"""In-process benchmark of the key service core: crypto ops/s and 1,000,000 user keys.

Measures, single-threaded through ``KeyService.call`` (request validation, policy check,
audit included, keyed and checkpointed as the server runs it; each run ends with an audit
flush, which is inside the timing):

- Encrypt (32-byte plaintext), Decrypt (of that blob), GenerateDataKey (AES_256) per
  second on SQLite and on PostgreSQL, median of ``--runs`` runs, as wall-clock ops/s and
  as ops per CPU-second of the benchmark thread (robust on a busy machine; for PostgreSQL
  the server's own CPU is not in it, so the wall-clock figure is the one to quote);
- the time to create 1,000,000 user keys with one ``create_user_keys`` call (chunks of
  10,000 per transaction) on SQLite and on PostgreSQL, then random lookups among them.

It starts what it needs: a temporary SQLite file and a throwaway PostgreSQL server
(``strongroom.testing.postgres.TempPostgres``: initdb + pg_ctl on a loopback port, as the
``postgres`` user when run as root). Results replace the section "Key service core,
in-process" of ``docs/benchmarks.md`` (from its heading to the next ``## `` heading).

Examples::

    python bench/kms_core.py                  # full run, writes docs/benchmarks.md
    python bench/kms_core.py --quick          # smaller numbers, a few seconds per part
    python bench/kms_core.py --no-postgres --no-write --profile Decrypt
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import pstats
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
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

ROOT = Path(__file__).resolve().parent.parent
DOC = bench_doc.DOC
SECTION = "## Key service core, in-process (bench/kms_core.py)"
OPERATIONS = ("Encrypt", "Decrypt", "GenerateDataKey")


@dataclass
class OpResult:
    operation: str
    wall_ops: list[float]
    cpu_ops: list[float]

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_ops)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ops)


@dataclass
class UserKeyResult:
    count: int
    seconds: float
    lookup_us: float
    decrypt_ops: float


@dataclass
class StoreResult:
    store: str
    ops: list[OpResult]
    user_keys: UserKeyResult | None


def requests_for(service: KeyService, caller: Caller) -> dict[str, dict[str, Any]]:
    key_id = service.call(caller, "CreateKey", {"Description": "bench"})["KeyMetadata"]["KeyId"]
    blob = service.call(caller, "Encrypt", {"KeyId": key_id, "Plaintext": b"k" * 32})
    return {
        "Encrypt": {"KeyId": key_id, "Plaintext": b"k" * 32},
        "Decrypt": {"CiphertextBlob": blob["CiphertextBlob"]},
        "GenerateDataKey": {"KeyId": key_id, "KeySpec": "AES_256"},
    }


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """Run ``fn``; return (wall seconds, CPU seconds of this thread)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - wall, time.thread_time() - cpu


def bench_ops(service: KeyService, caller: Caller, calls: int, runs: int) -> list[OpResult]:
    requests = requests_for(service, caller)
    results = []
    for operation in OPERATIONS:
        request = requests[operation]

        def run(operation: str = operation, request: dict[str, Any] = request) -> None:
            call = service.call
            for _ in range(calls):
                call(caller, operation, request)
            service.audit.flush()

        run()  # warm caches and code paths
        result = OpResult(operation, [], [])
        for _ in range(runs):
            wall, cpu = timed(run)
            result.wall_ops.append(calls / wall)
            result.cpu_ops.append(calls / cpu if cpu > 0 else float("inf"))
        results.append(result)
        print(f"  {operation:16s} {result.wall:>9,.0f} ops/s  ({result.cpu:,.0f} per CPU-s)")
    return results


def bench_user_keys(service: KeyService, caller: Caller, count: int) -> UserKeyResult:
    key_id = service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
    users = [f"user-{i:07d}" for i in range(count)]
    start = time.perf_counter()
    created = service.create_user_keys(caller, key_id, users)
    seconds = time.perf_counter() - start
    assert created == count, (created, count)
    print(f"  {count:,} user keys created in {seconds:.1f} s ({count / seconds:,.0f}/s)")
    rng = random.Random(1)
    sample = rng.sample(users, 2000)
    start = time.perf_counter()
    for user in sample:
        assert service.user_key_exists(caller, key_id, user)
    lookup_us = (time.perf_counter() - start) / len(sample) * 1e6
    blobs = [service.encrypt_for_user(caller, key_id, u, b"k" * 32) for u in sample[:500]]
    start = time.perf_counter()
    for blob in blobs:
        service.call(caller, "Decrypt", {"CiphertextBlob": blob})
    decrypt_ops = len(blobs) / (time.perf_counter() - start)
    service.audit.flush()
    print(f"  lookup {lookup_us:.0f} us; Decrypt of user blobs {decrypt_ops:,.0f} ops/s")
    return UserKeyResult(count, seconds, lookup_us, decrypt_ops)


def keyed_service(store: Any, root: LocalRootOfTrust, base: Path) -> KeyService:
    """The service with the audit log the server has: keyed chain, checkpoint file."""
    clock = SystemClock()
    chain, _ = open_audit_chain(store, root)
    audit = AuditLog(store, clock, chain, CheckpointFile(base, chain))
    return KeyService(store, root, clock, audit_log=audit)


@contextmanager
def sqlite_service(base: Path) -> Iterator[KeyService]:
    service = keyed_service(
        SqliteStore(base / "bench.db"), LocalRootOfTrust.create(base / "master.key"), base
    )
    try:
        yield service
    finally:
        service.close()


@contextmanager
def postgres_service(base: Path) -> Iterator[KeyService]:
    from strongroom.store import PostgresStore  # type: ignore[attr-defined]
    from strongroom.testing.postgres import TempPostgres

    with TempPostgres(base / "pg") as server:
        store = PostgresStore(server.create_database("bench"))
        audit_dir = base / "pg-audit"  # its own checkpoint file: another store, another key
        audit_dir.mkdir()
        service = keyed_service(store, LocalRootOfTrust.create(base / "pg-master.key"), audit_dir)
        try:
            yield service
        finally:
            service.close()


def profile(service: KeyService, caller: Caller, operation: str, calls: int) -> None:
    request = requests_for(service, caller)[operation]
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        service.call(caller, operation, request)
    service.audit.flush()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def machine() -> str:
    """The machine line of the report."""
    return bench_doc.machine()


def render(results: list[StoreResult], args: argparse.Namespace) -> str:
    today = datetime.date.today().isoformat()
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/kms_core.py", *sys.argv[1:]])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        SECTION,
        f"Command: `{command}` ({today}). Machine: {machine()}; load average {load}.",
        "",
        f"Single thread through `KeyService.call`: request validation, key policy, audit "
        f"event included; each run of {args.calls:,} calls ends with an audit flush (inside "
        f"the timing); median of {args.runs} runs. *Wall* is calls per second of elapsed "
        "time; *CPU* is calls per CPU-second of the benchmark thread, which holds up better "
        "when other work shares the machine (for PostgreSQL the server's CPU is not in it).",
        "",
        "| store | operation | ops/s (wall) | ops/s (CPU) |",
        "|---|---|---:|---:|",
    ]
    for result in results:
        for op in result.ops:
            lines.append(f"| {result.store} | {op.operation} | {op.wall:,.0f} | {op.cpu:,.0f} |")
    lines += [
        "",
        "User keys: one `create_user_keys` call (10,000 keys per transaction), then 2,000 "
        "random `user_key_exists` calls and `Decrypt` of 500 user blobs among them.",
        "",
        "| store | user keys | created in | keys/s | lookup | Decrypt of user blobs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        uk = result.user_keys
        if uk is not None:
            rate = uk.count / uk.seconds
            lines.append(
                f"| {result.store} | {uk.count:,} | {uk.seconds:.1f} s | {rate:,.0f} | "
                f"{uk.lookup_us:,.0f} µs | {uk.decrypt_ops:,.0f} ops/s |"
            )
    lines += ["", "Targets from the issue:", ""]
    for result in results:
        if result.store != "SQLite":
            continue
        decrypt = next(op for op in result.ops if op.operation == "Decrypt")
        verdict = "met" if decrypt.cpu >= 50_000 else "**not met**"
        lines.append(
            f"- Decrypt of a cached key >= 50,000/s in-process on one core: {verdict} "
            f"({decrypt.cpu:,.0f}/s per CPU-second, {decrypt.wall:,.0f}/s wall, SQLite)."
        )
        reached = "reached" if decrypt.cpu >= 100_000 else "**not reached**"
        lines.append(
            f"- Decrypt towards 100,000/s per CPU-second (issue 19): {reached} "
            f"({decrypt.cpu / 1000:,.1f}k; Encrypt "
            + ", GenerateDataKey ".join(
                f"{op.cpu / 1000:,.1f}k" for op in result.ops if op.operation != "Decrypt"
            )
            + ")."
        )
        uk = result.user_keys
        if uk is not None and uk.count >= 1_000_000:
            verdict = "met" if uk.seconds < 300 else "**not met**"
            lines.append(
                f"- 1,000,000 user keys through the batch call in < 5 min on SQLite: {verdict} "
                f"({uk.seconds:.0f} s)."
            )
    lines += [
        "",
        "The hot operations use key and alias records read within the last "
        "`key_record_ttl_s` (1 s): a change made by the same process is seen at once, one "
        "made by another process within that second. User keys are read from the store on "
        "every use, so a destroyed user key fails at once in every process.",
        "",
        "History of Decrypt on this machine (per CPU-second, SQLite): about 10,000/s before "
        "the hot path (short-lived key records, a cache-only first pass, compiled request "
        "validation), 25,000/s with it, 41,500/s after counter request ids, cached handlers, "
        "one header parse and template audit events (about 24 µs per call). Then, measured "
        "step by step with the steps interleaved (2026-11-29, a loaded machine; µs per call "
        "including its share of the flush): blob message keys from an HMAC keyed once per "
        "key version and copied per message (the same HKDF-Expand bytes), a one-pass header "
        "parse and the AAD joined at once, -2.7; key policy decisions remembered per policy "
        "text for policies without conditions (keyed by principal, account, action and key "
        "ARN; a changed policy is a new text), -1.7; the audit body up to the request id made "
        "once per caller, key and operation, -0.6 (-0.2 more joining the rest in one step); "
        "SQLite audit rows bound as `bytearray` (sqlite3 sends `bytes` through its adapter "
        "lookup, which costs more than the copy), -0.3; one compiled validator per operation "
        "and the handler looked up first, -0.6; blob headers of key versions looked up by "
        "their bytes, -0.8: from about 23.4 to 16.5 µs.",
        "",
        "Where Decrypt's 16.5 µs go now (py-spy): the audit flush about 4.2 µs per event "
        "(SQLite insert, commit and WAL checkpoint about 2.5-3, chain hash 0.8, records 0.5) "
        "and the event body 1.8 (the time's float repr alone 0.45); opening the blob 4.1 "
        "(AES-GCM under a new key per message 2.0, the message key's HMAC 1.0, AAD and "
        "slices 0.7, header lookup 0.3); finding the key from the cache-only unit 1.8; "
        "request id, context, handler and response 1.3; policy decision and key state 0.8; "
        "validation 0.5. On PostgreSQL the audit flush sends its bytea arrays as binary "
        "parameters: about 1 µs of client CPU per event (13-20 µs when they went as text).",
        "",
        "Since then (2026-11-29, old and new code side by side, 2 alternating rounds): noting "
        "each key's last use for GetKeyLastUsage (a dictionary store under a lock, written "
        "with the audit batch) costs Encrypt about 4% and GenerateDataKey about 3% of their "
        "rate per CPU-second; Decrypt moved by less than the noise (-2% to +1%). Runs of the "
        "same code on this machine differ by up to 5%.",
        "",
        "Issue 19 (2026-12-06, below the operation handlers, no check skipped). Counted, per "
        "call with its share of the flush (cProfile calls; bytecodes traced over 500 calls): "
        "Decrypt 112 -> 91 Python calls and 1,352 -> 1,157 bytecodes, Encrypt 120 -> 92 and "
        "1,401 -> 1,128, GenerateDataKey 132 -> 103 and 1,498 -> 1,218. Timed on a machine "
        "loaded by other work (old and new code alternated, 3 rounds, median of 7 runs of "
        "20,000 calls, CPU µs per call): Decrypt 31.9 -> 27.6, Encrypt 39.5 -> 25.7, "
        "GenerateDataKey 41.7 -> 25.4. What changed: the wall clock is `time.time` itself "
        "(the caches read it four times per call); the blob's message key and AES-GCM are "
        "inlined; Encrypt reads salt and nonce in one CSPRNG call and reuses the encoded "
        "header of each key version; the key ARN is made once per key record; audit "
        "admission, the fail-closed queue append, the record-cache lookup and the deletion "
        "check are inlined; request bounds are one chained comparison; the flush hashes a "
        "batch in one loop and makes named tuples. Not possible: one AES-GCM object per key "
        "version. Format 1 gives every blob its own key (HKDF-Expand of the version's "
        "material with the blob's random salt), so AES-GCM is set up per message (about "
        "1.0 µs of its 1.6 µs; the message key's HMAC 0.7). What is left of about 20 µs on "
        "a quiet core is Python: the audit flush about a quarter (SQLite insert and commit, "
        "the chain HMAC, the rows), then `KeyService.call` and the handler's own steps "
        "(validation, the cache-only unit, resolve, authorise, state, material id, the "
        "response and the audit event), each a frame or two; 100,000/s means about 10 µs, "
        "which needs those steps fused into one path per operation (the typed requests "
        "work is the place), not more of these cuts.",
    ]
    return "\n".join(lines) + "\n"


def write_doc(section: str, path: Path) -> None:
    """Replace this benchmark's section (its heading to the next ``## ``), or append it."""
    bench_doc.write_section(section, SECTION, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--calls", type=int, help="calls per run (default 20,000; quick 3,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per operation (median)")
    parser.add_argument("--user-keys", type=int, help="user keys (default 1,000,000; quick 50,000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to write the section")
    parser.add_argument("--profile", choices=OPERATIONS, help="cProfile one operation on SQLite")
    args = parser.parse_args()
    args.calls = args.calls or (3_000 if args.quick else 20_000)
    args.user_keys = args.user_keys or (50_000 if args.quick else 1_000_000)
    if args.quick:
        args.runs = min(args.runs, 3)

    results = []
    with ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kms-bench-")))
        stores: list[tuple[str, Callable[[Path], Any]]] = [("SQLite", sqlite_service)]
        if not args.no_postgres:
            stores.append(("PostgreSQL", postgres_service))
        for name, factory in stores:
            print(f"{name}:")
            with factory(base) as service:
                caller = tenant_caller(service, "bench")
                if args.profile and name == "SQLite":
                    profile(service, caller, args.profile, args.calls)
                ops = bench_ops(service, caller, args.calls, args.runs)
                user_keys = bench_user_keys(service, caller, args.user_keys)
                results.append(StoreResult(name, ops, user_keys))
    section = render(results, args)
    print(section)
    if not args.no_write:
        write_doc(section, args.doc)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
