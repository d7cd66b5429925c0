"""CPU accounting of ``bench/mesh.py`` from ``/proc``: per process, per machine, run-queue wait."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (from ``/proc/PID/task/TID/children``)."""
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                children = Path(f"/proc/{pid}/task/{task}/children").read_text()
                todo.extend(int(c) for c in children.split())
    return tree


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds the processes used so far."""
    user = system = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(pid)
            user += int(fields[11])
            system += int(fields[12])
    return user / TICK, system / TICK


def run_queue_wait(pids: list[int]) -> float:
    """Seconds the processes' threads waited, ready to run, for a CPU (``schedstat``)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    path = f"/proc/{pid}/task/{tid}/schedstat"
                    total += int(Path(path).read_text().split()[1])
    return total / 1e9


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (not idle, not waiting for I/O)."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK


def wait_for_quiet(threshold: float, patience: float) -> float:
    """Wait (at most ``patience`` s) until the machine's busy cores drop below ``threshold``."""
    start = time.monotonic()
    while True:
        before, t0 = machine_busy(), time.monotonic()
        time.sleep(0.5)
        busy = (machine_busy() - before) / (time.monotonic() - t0)
        if busy < threshold or time.monotonic() - start >= patience:
            return time.monotonic() - start


def set_affinity(pids: list[int], cpus: set[int]) -> None:
    """Run every thread of these processes on ``cpus`` only."""
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), cpus)
