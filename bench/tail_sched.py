"""What the scheduler and the sockets say about a server under ``wrk`` (for kms_api_tail.py).

:func:`run_wrk` replays a signed request with ``wrk`` and reads its threads' run-queue
waits; :func:`thread_sched` reads any process's; :func:`connection_split` counts a port's
connections per worker (``ss``); :func:`perf_sched_waits` records the scheduler with
``perf sched`` for a few seconds and says, for every time a worker's event loop thread or
wrk was ready but waited for a core, what ran on the cores meanwhile: the other worker's
loop, a worker's background thread (audit flusher, refresh), wrk, or other work on the
machine.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from kms_api_servers import Target, process_tree

PERCENTILES = (50, 90, 99, 99.9)


def workers_of(root: int) -> list[int]:
    """The supervisor's worker processes (its children but the resource tracker), or the
    root alone."""
    tree = process_tree(root)
    found = []
    for pid in tree[1:]:
        with contextlib.suppress(OSError):
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found or tree[:1]


def thread_sched(pid: int) -> dict[int, tuple[str, float, int]]:
    """Each thread of ``pid``: name, run-queue wait (s), waits (scheduler timeslices)."""
    out = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                fields = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
                out[int(tid)] = (name, int(fields[1]) / 1e9, int(fields[2]))
    return out


def connection_split(port: int, pids: list[int]) -> list[int]:
    """Established server-side connections on ``port`` per worker pid (``ss -tnp``)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    counts = dict.fromkeys(pids, 0)
    for line in out.splitlines():
        for pid in pids:
            if f"pid={pid}," in line:
                counts[pid] += 1
    return sorted(counts.values(), reverse=True)


# --- wrk -----------------------------------------------------------------------------------


def wrk_script(headers: dict[str, str], body: bytes) -> str:
    lua_headers = "".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n"
        for k, v in headers.items()
        if k.lower() != "host"
    )
    marks = ", ".join(f'\\"p{p}\\": %f'.replace(".", "_") for p in PERCENTILES)  # p99.9 -> p99_9
    values = ", ".join(f"latency:percentile({p}) / 1000" for p in PERCENTILES)
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode('utf-8'))}\n"
        f"{lua_headers}"
        "done = function(summary, latency, requests)\n"
        f'  io.write(string.format("JSON {{\\"requests\\": %d, \\"seconds\\": %f, {marks}, '
        '\\"max\\": %f, \\"errors\\": %d, \\"non2xx\\": %d}\\n", '
        f"summary.requests, summary.duration / 1e6, {values}, latency.max / 1000, "
        "summary.errors.connect + summary.errors.read + summary.errors.write + "
        "summary.errors.timeout, summary.errors.status))\n"
        "end\n"
    )


def run_wrk(
    target: Target, operation: str, connections: int, seconds: float, during: Any = None
) -> tuple[dict[str, Any], dict[int, tuple[str, float, int]], Any]:
    """Replay for ``seconds``; return wrk's summary, its threads' run-queue waits and
    what ``during()`` returned (called once, a second in)."""
    headers, body = target.signed(operation)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(wrk_script(headers, body))
        script = handle.name
    try:
        proc = subprocess.Popen(
            [
                *("wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"),
                *("--timeout", "10s", "-s", script, target.endpoint.rstrip("/") + "/"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        before = thread_sched(proc.pid)
        seen = None
        if during is not None:
            time.sleep(min(1.0, seconds / 2))
            seen = during()
        # the last sample before wrk exits: its threads' counters go with it
        after = before
        while proc.poll() is None:
            sample = thread_sched(proc.pid)
            if sample:
                after = sample
            time.sleep(0.05)
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        Path(script).unlink()
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    data: dict[str, Any] = json.loads(line[5:])
    data["rps"] = data["requests"] / data["seconds"]
    waits = {
        tid: (name, wait - before.get(tid, (name, 0.0, 0))[1], n - before.get(tid, (name, 0, 0))[2])
        for tid, (name, wait, n) in after.items()
    }
    return data, waits, seen


# --- perf sched ----------------------------------------------------------------------------

_SWITCH = re.compile(
    r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: prev_comm=(.*?) prev_pid=(\d+) .*?"
    r"prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)"
)
_WAKE = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_wak(?:ing|eup): comm=(.*?) pid=(\d+)")


def perf_sched_record(seconds: float, data: Path) -> bool:
    """Record the scheduler on every core for ``seconds`` into ``data`` (``perf sched``).

    ``False`` without ``perf`` or when recording is not allowed.
    """
    if shutil.which("perf") is None:
        return False
    recorded = subprocess.run(
        ["perf", "sched", "record", "-a", "-o", str(data), "--", "sleep", str(seconds)],
        capture_output=True,
        check=False,
    )
    return recorded.returncode == 0 and data.exists()


def perf_sched_waits(data: Path, pids: list[int]) -> dict[str, Any]:
    """Attribute the loop threads' and wrk's waits in a recording of :func:`perf_sched_record`.

    ``pids`` are the workers (each one's event loop runs on its main thread, whose thread
    id is the pid).
    """
    threads = {tid for pid in pids for tid in thread_sched(pid)}
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "comm,tid,cpu,time,event,trace"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return _attribute(script.splitlines(), set(pids), threads)


def _attribute(lines: list[str], loops: set[int], threads: set[int]) -> dict[str, Any]:
    def kind(pid: int, comm: str) -> str:
        if pid in loops:
            return "worker loop"
        if pid in threads:
            return "worker background thread"
        if comm == "wrk":
            return "wrk"
        return "idle" if pid == 0 else "other work"

    running: dict[int, tuple[int, str, float]] = {}
    segments: dict[int, list[tuple[float, float, str]]] = collections.defaultdict(list)
    ready_since: dict[int, float] = {}
    waits: list[tuple[str, float, float]] = []
    for line in lines:
        m = _SWITCH.search(line)
        if m:
            cpu, t = int(m[1]), float(m[2])
            prev_pid, state, next_comm, next_pid = int(m[4]), m[5], m[6], int(m[7])
            prev = running.get(cpu)
            if prev is not None:
                segments[cpu].append((prev[2], t, kind(prev[0], prev[1])))
            running[cpu] = (next_pid, next_comm, t)
            if state.startswith("R") and prev_pid != 0:  # preempted: still ready
                ready_since[prev_pid] = t
            if next_pid in ready_since:
                since = ready_since.pop(next_pid)
                if next_pid in loops or next_comm == "wrk":
                    waits.append(("loop" if next_pid in loops else "wrk", since, t))
            continue
        m = _WAKE.search(line)
        if m:
            pid = int(m[4])
            if pid not in ready_since and all(r[0] != pid for r in running.values()):
                ready_since[pid] = float(m[2])
    out: dict[str, Any] = {}
    for who in ("loop", "wrk"):
        mine = sorted(e - s for w, s, e in waits if w == who)
        behind: collections.Counter[str] = collections.Counter()
        behind_long: collections.Counter[str] = collections.Counter()
        for w, s, e in waits:
            if w != who:
                continue
            for segs in segments.values():
                for a, b, k in segs:
                    if a < e and b > s:
                        overlap = min(b, e) - max(a, s)
                        behind[k] += overlap
                        if e - s > 0.001:
                            behind_long[k] += overlap

        def q(p: float, ds: list[float] = mine) -> float:
            return ds[min(len(ds) - 1, int(p * len(ds)))] * 1000 if ds else 0.0

        out[who] = {
            "waits": len(mine),
            "total_ms": sum(mine) * 1000,
            "p50_ms": q(0.5),
            "p99_ms": q(0.99),
            "max_ms": mine[-1] * 1000 if mine else 0.0,
            "over_1ms": sum(1 for d in mine if d > 0.001),
            "behind": _shares(behind),
            "behind_over_1ms": _shares(behind_long),
        }
    return out


def _shares(counter: collections.Counter[str]) -> dict[str, float]:
    total = sum(counter.values()) or 1.0
    return {k: round(v / total * 100, 1) for k, v in counter.most_common()}
