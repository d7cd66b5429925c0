"""What the audit flush costs per event, this checkout beside another, timed and counted.

The server's background thread appends the queued audit events in one transaction per
batch: the keyed hash chain (HMAC-SHA256), the rows, the insert and the commit. This
queues ``--events`` Decrypt events (through ``KeyService.call``, as the server does) and
flushes them, ``--batches`` times, with the audit log the server has (keyed chain,
checkpoint file), on SQLite (a file on the data disk, ``synchronous=FULL``) and, with
``--postgres``, on a throwaway PostgreSQL. Two figures per side:

- CPU µs per event (``time.thread_time`` around each flush, median over the batches; the
  sides alternate run by run so load on the machine falls on both alike);
- instructions per event, counted by valgrind (``callgrind``, the flush only: it runs
  under ``functools.reduce``), which do not swing with load. For PostgreSQL only the
  client's instructions are counted, not the database server's.

With ``--compare PYTHON`` another checkout's interpreter runs the same child beside this
one. Prints a table (no document section: ``bench/kms_core.py`` publishes the flush
cost with the rest of the key service core). ``--split`` says where this checkout's flush
time goes instead: the chain's HMACs (``AuditChain.links``), SQLite's insert of the rows,
the rest of the store transaction (its reads, the keys' uses, the commit, its fsync and
WAL checkpoints) and the audit log's own work, in CPU µs per event.

    python bench/audit_flush.py --compare /path/to/main/.venv/bin/python
    python bench/audit_flush.py --compare PYTHON --postgres --no-callgrind
    python bench/audit_flush.py --split
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_COLLECTED = re.compile(r"Collected : (\d+)")


@contextlib.contextmanager
def _store(kind: str, base: Path) -> Iterator[Any]:
    from strongroom.store import SqliteStore, open_store

    if kind == "sqlite":
        store = SqliteStore(base / "bench.db")
        yield store
        store.close()
        return
    from strongroom.testing.postgres import TempPostgres

    with TempPostgres(base / "pg") as pg:
        store = open_store(pg.dsn)
        yield store
        store.close()


_PHASES: dict[str, float] = {}


def _timed_phase(owner: Any, name: str, phase: str) -> None:
    """Wrap ``owner.name`` to add its CPU time (this thread's) to ``_PHASES[phase]``."""
    inner = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            _PHASES[phase] = _PHASES.get(phase, 0.0) + time.thread_time() - start

    setattr(owner, name, timed)


def _split_phases() -> None:
    """Time the flush's parts (``--split``): the chain, the rows' insert, the transaction."""
    import strongroom.store.sqlite as sqlite_store
    from strongroom.kms.audit_log import AuditLog
    from strongroom.ports.audit_chain import AuditChain

    _timed_phase(AuditChain, "links", "chain HMACs")
    _timed_phase(sqlite_store, "insert_events", "rows inserted")
    _timed_phase(sqlite_store.SqliteStore, "write", "transaction")
    _timed_phase(AuditLog, "flush", "flush")


def child(kind: str, events: int, batches: int, counted: bool, split: bool = False) -> None:
    """Queue and flush ``batches`` x ``events`` events; print the CPU µs of each flush."""
    from strongroom.audittrail import CheckpointFile
    from strongroom.kms import KeyService, SystemClock
    from strongroom.kms.audit_key import open_audit_chain
    from strongroom.kms.audit_log import AuditLog
    from strongroom.rootkey import LocalRootOfTrust
    from strongroom.testing.service import tenant_caller

    # the temporary directory must be on a disk, not a tmpfs: the commit's writes and its
    # fsync are part of the cost
    with (
        tempfile.TemporaryDirectory(prefix="audit-flush-") as tmp,
        _store(kind, Path(tmp)) as store,
    ):
        base = Path(tmp)
        root = LocalRootOfTrust.create(base / "master.key")
        clock = SystemClock()
        chain, _ = open_audit_chain(store, root)
        audit = AuditLog(store, clock, chain, CheckpointFile(base, chain))
        service = KeyService(store, root, clock, audit_log=audit)
        caller = tenant_caller(service, "bench")
        key_id = service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
        sealed = service.call(caller, "Encrypt", {"KeyId": key_id, "Plaintext": b"k" * 32})
        request = {"CiphertextBlob": sealed["CiphertextBlob"]}
        call = service.call
        audit.flush()
        for _ in range(2 * events):  # warm-up: caches, statements, the chain head
            call(caller, "Decrypt", request)
        audit.flush()
        if split:
            _split_phases()
        found: list[float] = []

        def flush(_: object = None, __: object = None) -> None:
            start = time.thread_time()
            written = audit.flush()
            found.append((time.thread_time() - start) / max(1, written) * 1e6)

        for _ in range(batches):
            for _ in range(events):
                call(caller, "Decrypt", request)
            if counted:
                functools.reduce(flush, range(1), None)  # the only part callgrind counts
            else:
                flush()
        if split:
            phases = {name: cpu / (events * batches) * 1e6 for name, cpu in _PHASES.items()}
            flush, transaction = phases.pop("flush"), phases.pop("transaction")
            chain, rows = phases["chain HMACs"], phases["rows inserted"]
            print(f"CPU µs per event, {batches} flushes of {events} events (SQLite):")
            print(f"  chain HMACs (AuditChain.links)           {chain:5.2f}")
            print(f"  rows inserted (one statement per batch)  {rows:5.2f}")
            print(f"  rest of the transaction (commit, fsync)  {transaction - chain - rows:5.2f}")
            print(f"  audit log (queue, anchor, checkpoints)   {flush - transaction:5.2f}")
            print(f"  whole flush                              {flush:5.2f}")
        service.close()
    print("JSON " + json.dumps(found))


def _run(python: str, kind: str, events: int, batches: int, counted: bool) -> tuple[Any, str]:
    command = [python, str(Path(__file__).resolve()), "--child", kind, str(events), str(batches)]
    if counted:
        command = [
            *("valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce"),
            # children: ``python`` may be a wrapper that execs the interpreter; not the
            # throwaway PostgreSQL's programs, which would crawl under valgrind
            *(
                "--trace-children=yes",
                "--trace-children-skip=*runuser*,*pg_ctl*,*initdb*,*postgres*",
            ),
            "--callgrind-out-file=/dev/null",
            *command,
            "--counted",
        ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("JSON ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][5:]), done.stderr


def cpu_us(python: str, kind: str, events: int, batches: int) -> list[float]:
    """CPU µs per event of each flush, run by ``python``."""
    found, _ = _run(python, kind, events, batches, counted=False)
    return list(found)


def instructions(python: str, kind: str, events: int, batches: int) -> float:
    """Instructions per event of the flushes, counted by callgrind, run by ``python``."""
    _, stderr = _run(python, kind, events, batches, counted=True)
    counts = [int(n) for n in _COLLECTED.findall(stderr)]
    if not counts:
        raise SystemExit(f"callgrind counted nothing:\n{stderr[-2000:]}")
    return max(counts) / (events * batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="PYTHON", help="another checkout's interpreter")
    parser.add_argument("--events", type=int, default=1000, help="events per flush")
    parser.add_argument("--batches", type=int, default=20, help="flushes per run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    parser.add_argument("--no-callgrind", action="store_true", help="timings only")
    parser.add_argument("--split", action="store_true", help="where this checkout's time goes")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--counted", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, events, batches = args.child
        child(kind, int(events), int(batches), args.counted)
        return
    if args.split:
        child("sqlite", args.events, args.batches, counted=False, split=True)
        return
    sides = [("this", sys.executable)]
    if args.compare:
        sides.insert(0, ("other", args.compare))
    kinds = ["sqlite", "postgres"] if args.postgres else ["sqlite"]
    for kind in kinds:
        timed: dict[str, list[float]] = {name: [] for name, _ in sides}
        for run in range(args.runs):
            for name, python in sides if run % 2 == 0 else sides[::-1]:
                timed[name] += cpu_us(python, kind, args.events, args.batches)
        for name, python in sides:
            line = f"{kind:8s} {name:5s} CPU µs/event median {statistics.median(timed[name]):.2f}"
            if not args.no_callgrind:
                count = instructions(python, kind, args.events, max(2, args.batches // 4))
                line += f", instructions/event {count:,.0f}"
            print(line + f"  ({python})", flush=True)


if __name__ == "__main__":
    main()
