"""``strongroom`` with tail-latency probes in every process: ``python bench/tail_probe.py server``.

``bench/kms_api_tail.py`` starts the server through this file instead of ``-m
strongroom.cli``. Workers are spawned (``multiprocessing`` "spawn"), and a spawned child
runs its parent's main file as ``__mp_main__`` before the worker's own code: so the
module-level code below runs in the supervisor and in every worker alike, and installs,
in each, counters for what can stall a worker's event loop:

- the cyclic garbage collector (``gc.callbacks``): collections and pauses per generation;
- the time the event loop thread spends in the inline protocol's ``data_received`` (one
  call answers the requests in one read) as wall time and as the thread's own CPU time:
  wall minus CPU is time the thread was ready but not running (another process had the
  core, or another thread had the GIL);
- the audit flusher's rounds (wall and thread CPU time, events) and background record
  refreshes.

``SIGUSR1`` makes a process write its counters so far (cumulative) as JSON to
``$STRONGROOM_TAIL_PROBE/<pid>.json``; the bench diffs two of them around a measurement.
Experiments (each changes the workers only, never what a request does):
``STRONGROOM_TAIL_GC`` ``off`` (``gc.disable()`` once serving) or ``THRESHOLD0``
(generation 0's threshold); ``STRONGROOM_TAIL_SWITCH`` the GIL switch interval (seconds);
``STRONGROOM_TAIL_FLUSH`` the audit flush interval (seconds); ``STRONGROOM_TAIL_PIN=1``
pins worker *i* to core *i* modulo the cores; ``STRONGROOM_TAIL_TIME_FULL_GC=1`` times
a full collection at each dump (after the counters are taken); ``STRONGROOM_TAIL_SLICE``
asks the scheduler for this slice (nanoseconds, ``sched_setattr``, Linux 6.12+) for each
worker's loop thread.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

OUT = os.environ.get("STRONGROOM_TAIL_PROBE")
BOUNDS_MS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


class Hist:
    """Count, sum, max and a coarse histogram of durations (seconds)."""

    __slots__ = ("buckets", "count", "max", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.buckets = [0] * (len(BOUNDS_MS) + 1)

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        ms = seconds * 1000.0
        i = 0
        for bound in BOUNDS_MS:
            if ms < bound:
                break
            i += 1
        self.buckets[i] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "total_s": self.total,
            "max_s": self.max,
            "buckets": self.buckets,
        }


STATS: dict[str, Hist] = {}
FLUSHING = [False]
"""Whether the audit flusher is in a round (reads then count apart)."""
EVENTS: dict[str, int] = {}


def hist(name: str) -> Hist:
    found = STATS.get(name)
    if found is None:
        found = STATS[name] = Hist()
    return found


def _gc_probe() -> None:
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            hist(f"gc{info['generation']}").add(time.perf_counter() - started[0])

    gc.callbacks.append(callback)


def _wrap_protocol() -> None:
    try:
        from strongroom.server import inline_protocol
    except ImportError:
        return
    cls = inline_protocol.InlineHttpProtocol
    original = cls.data_received
    wall_h, cpu_h, off_h = hist("read_wall"), hist("read_cpu"), hist("read_off_cpu")
    flushing_h = hist("read_wall_in_flush")
    slept_h, preempted_h = hist("read_off_slept"), hist("read_off_preempted")
    slept_flush_h = hist("read_off_slept_in_flush")
    clock, cpu = time.perf_counter, time.thread_time
    import resource

    usage, thread = resource.getrusage, resource.RUSAGE_THREAD

    def data_received(self: Any, data: bytes) -> None:
        u0 = usage(thread)
        w0, c0 = clock(), cpu()
        try:
            original(self, data)
        finally:
            wall, used = clock() - w0, cpu() - c0
            u1 = usage(thread)
            flushing = FLUSHING[0]
            (flushing_h if flushing else wall_h).add(wall)
            cpu_h.add(used)
            off = max(0.0, wall - used)
            off_h.add(off)
            # a voluntary switch inside a read is a wait for the GIL (or a lock): the
            # socket is non-blocking; an involuntary one is the scheduler's preemption
            if u1.ru_nvcsw > u0.ru_nvcsw:
                (slept_flush_h if flushing else slept_h).add(off)
            elif u1.ru_nivcsw > u0.ru_nivcsw:
                preempted_h.add(off)

    cls.data_received = data_received  # type: ignore[method-assign]


def _wrap_background() -> None:
    try:
        from strongroom.server import runtime
    except ImportError:
        return
    flush = runtime.Runtime.flush_audit

    def flush_audit(self: Any) -> int:
        w0, c0 = time.perf_counter(), time.thread_time()
        FLUSHING[0] = True
        try:
            written = flush(self)
        finally:
            FLUSHING[0] = False
        if written:
            hist("flush_wall").add(time.perf_counter() - w0)
            hist("flush_cpu").add(time.thread_time() - c0)
            EVENTS["flushed"] = EVENTS.get("flushed", 0) + written
        return written

    runtime.Runtime.flush_audit = flush_audit  # type: ignore[method-assign]
    try:
        from strongroom.kms import record_refresh
    except ImportError:
        return
    reload_of = record_refresh.Refresher.__init__

    def init(self: Any, reload: Any, name: str) -> None:
        def timed(item: Any) -> None:
            c0 = time.thread_time()
            try:
                reload(item)
            finally:
                hist("refresh_cpu").add(time.thread_time() - c0)

        reload_of(self, timed, name)

    record_refresh.Refresher.__init__ = init  # type: ignore[method-assign]


def _gc_experiment() -> None:
    wanted = os.environ.get("STRONGROOM_TAIL_GC")
    if not wanted:
        return
    try:
        from strongroom.server import worker
    except ImportError:
        return
    settle = worker.settle_heap

    def settle_heap() -> None:
        settle()
        if wanted == "off":
            gc.disable()
        else:
            gc.set_threshold(int(wanted), *gc.get_threshold()[1:])

    worker.settle_heap = settle_heap


def _set_slice(ns: int) -> None:
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    attr = struct.pack(
        "IIQiIQQQII", 56, 0, 0, os.getpriority(os.PRIO_PROCESS, 0), 0, ns, 0, 0, 0, 0
    )
    if libc.syscall(314, 0, ctypes.c_char_p(attr), 0) != 0:  # sched_setattr, x86_64
        raise OSError(ctypes.get_errno(), "sched_setattr")


def _knobs() -> None:
    try:
        from strongroom.server import runtime, supervisor, worker
    except ImportError:
        return
    switch = os.environ.get("STRONGROOM_TAIL_SWITCH")
    if switch:
        worker.SWITCH_INTERVAL_SECONDS = float(switch)
    flush = os.environ.get("STRONGROOM_TAIL_FLUSH")
    if flush:
        import dataclasses

        init = runtime.Runtime.__init__

        def runtime_init(self: Any, settings: Any, *args: Any, **kwargs: Any) -> None:
            settings = dataclasses.replace(settings, audit_flush_seconds=float(flush))
            init(self, settings, *args, **kwargs)

        runtime.Runtime.__init__ = runtime_init  # type: ignore[method-assign]
    pin, slice_ns = os.environ.get("STRONGROOM_TAIL_PIN"), os.environ.get("STRONGROOM_TAIL_SLICE")
    if pin or slice_ns:
        main = supervisor._worker_main

        def worker_main(settings: Any, sock: Any, pid: int, counts: Any, index: int) -> None:
            if pin:
                os.sched_setaffinity(0, {index % (os.cpu_count() or 1)})
            if slice_ns:
                _set_slice(int(slice_ns))
            main(settings, sock, pid, counts, index)

        worker_main.__module__ = supervisor.__name__  # pickled by name to the workers
        worker_main.__qualname__ = "_worker_main"
        supervisor._worker_main = worker_main


def _dump(_signum: int, _frame: Any) -> None:
    if OUT is None:
        return
    data = {
        "pid": os.getpid(),
        "time": time.time(),
        "stats": {name: h.as_dict() for name, h in STATS.items()},
        "events": dict(EVENTS),
        "gc_threshold": gc.get_threshold(),
        "gc_enabled": gc.isenabled(),
        "gc_frozen": gc.get_freeze_count(),
        # what a full collection would walk now (the frozen start-up heap is left out)
        "gc_unfrozen": [len(gc.get_objects(generation=g)) for g in range(3)],
        "switch_interval": sys.getswitchinterval(),
    }
    if os.environ.get("STRONGROOM_TAIL_TIME_FULL_GC"):  # what a full pass would pause now
        t0 = time.perf_counter()
        gc.collect()
        data["full_gc_s"] = time.perf_counter() - t0
    path = Path(OUT) / f"{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


if OUT is not None:
    _gc_probe()
    _wrap_protocol()
    _wrap_background()
    _gc_experiment()
    _knobs()
    signal.signal(signal.SIGUSR1, _dump)


if __name__ == "__main__":
    from strongroom.cli.main import main

    main()
