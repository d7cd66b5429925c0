"""The cells of ``bench/kms_api_tail.py`` and how they are printed and tabulated.

A :class:`Cell` is one variant, one operation, one round: wrk's figures, the scheduler's
and the workers' probe counters (:func:`probe_delta` turns two dumps of each worker into
what the cell added). :func:`line` is a cell's one-line summary; :func:`render` the
section of ``docs/benchmarks.md`` (medians over rounds per variant).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bench_doc

HEADING = "## KMS API tail at 16 connections (bench/kms_api_tail.py)"


@dataclass
class Cell:
    """One variant, one operation, one round."""

    variant: str
    operation: str
    round: int
    rps: float
    latency_ms: dict[str, float]
    errors: int
    split: list[int]
    loop_wait_s: float
    loop_waits: int
    other_threads_wait_s: float
    wrk_wait_s: float
    wrk_waits: int
    seconds: float
    probes: dict[str, Any]
    sched: dict[str, Any] | None = None
    """``perf sched``: what the loop threads and wrk waited behind (``--perf-sched``)."""
    server_cores: float = 0.0
    other_cores: float = 0.0
    """Cores' worth of CPU the rest of the machine (not this server, not wrk) used."""


def _diff(after: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Counters gained between two dumps of one process (max is the later dump's)."""
    out: dict[str, Any] = {}
    for name, stat in after["stats"].items():
        old = (before or {}).get("stats", {}).get(name)
        if old is None:
            out[name] = dict(stat)
            continue
        out[name] = {
            "count": stat["count"] - old["count"],
            "total_s": stat["total_s"] - old["total_s"],
            "max_s": stat["max_s"] if stat["max_s"] > old["max_s"] else None,
            "buckets": [a - b for a, b in zip(stat["buckets"], old["buckets"], strict=True)],
        }
    return out


def _merge(per_worker: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for stats in per_worker:
        for name, stat in stats.items():
            into = merged.setdefault(
                name, {"count": 0, "total_s": 0.0, "max_s": 0.0, "buckets": None}
            )
            into["count"] += stat["count"]
            into["total_s"] += stat["total_s"]
            if stat["max_s"] is not None:
                into["max_s"] = max(into["max_s"], stat["max_s"])
            b = stat["buckets"]
            into["buckets"] = (
                b
                if into["buckets"] is None
                else [x + y for x, y in zip(into["buckets"], b, strict=True)]
            )
    return merged


def probe_delta(
    before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """What the workers' probe counters gained between two dumps, summed over workers."""
    return _merge([_diff(after[pid], before.get(pid)) for pid in after])


def _brief(probes: dict[str, Any], name: str) -> str:
    """``count x mean us (max ms)`` of one probe histogram."""
    h = probes.get(name, {})
    n = h.get("count", 0)
    return f"{n}x{h.get('total_s', 0.0) / max(1, n) * 1e6:.0f}us"


def line(cell: Cell) -> str:
    lat = cell.latency_ms
    p = cell.probes
    gc2 = p.get("gc2", {})
    gc_all = sum(p.get(f"gc{g}", {}).get("count", 0) for g in range(3))
    gc_ms = sum(p.get(f"gc{g}", {}).get("total_s", 0.0) for g in range(3)) * 1000
    reads = p.get("read_wall", {})
    slow = sum(reads.get("buckets", [0] * 9)[4:]) if reads else 0
    in_flush = p.get("read_wall_in_flush", {})
    fl_n = in_flush.get("count", 0)
    fl_mean = in_flush.get("total_s", 0.0) / max(1, fl_n) * 1e6
    out_mean = reads.get("total_s", 0.0) / max(1, reads.get("count", 0)) * 1e6
    fl_share = fl_n / max(1, fl_n + reads.get("count", 0)) * 100
    off = p.get("read_off_cpu", {})
    off_slow = sum(off.get("buckets", [0] * 9)[4:]) if off else 0
    flush = p.get("flush_cpu", {})
    return (
        f"{cell.variant:>10} {cell.operation:<15} r{cell.round} {cell.rps:8,.0f}/s "
        f"p50 {lat['p50']:.2f} p90 {lat['p90']:.2f} p99 {lat['p99']:.2f} "
        f"p99.9 {lat['p99.9']:.2f} max {lat['max']:.1f} ms | split {cell.split} | "
        f"loop wait {cell.loop_wait_s / cell.seconds * 1000:.0f} ms/s "
        f"({cell.loop_wait_s / max(1, cell.loop_waits) * 1e6:.0f} us/slice), "
        f"wrk wait {cell.wrk_wait_s / cell.seconds * 1000:.0f} ms/s "
        f"({cell.wrk_wait_s / max(1, cell.wrk_waits) * 1e6:.0f} us/slice) | "
        f"gc {gc_all} ({gc_ms:.1f} ms, gen2 {gc2.get('count', 0)}, max "
        f"{max((p.get(f'gc{g}', {}).get('max_s') or 0.0) for g in range(3)) * 1000:.2f} ms; "
        f"frozen {p.get('gc_frozen')}, unfrozen per generation {p.get('gc_unfrozen')}"
        + (f", a full pass now {p['full_gc_ms']} ms" if p.get("full_gc_ms") else "")
        + ") | "
        f"reads>1ms {slow} (off-cpu>1ms {off_slow}), mean {out_mean:.0f} us; in flush "
        f"{fl_share:.1f}% mean {fl_mean:.0f} us | slept in reads {_brief(p, 'read_off_slept')}"
        f" (in flush {_brief(p, 'read_off_slept_in_flush')}), preempted "
        f"{_brief(p, 'read_off_preempted')} | flush cpu max "
        f"{(flush.get('max_s') or 0.0) * 1000:.2f} ms x{flush.get('count', 0)} | "
        f"cores server {cell.server_cores:.2f} others {cell.other_cores:.2f}"
        + (f" | errors {cell.errors}" if cell.errors else "")
        + (
            "".join(
                f" | {who} waits {d['waits']} (p99 {d['p99_ms']:.2f} ms, >1 ms {d['over_1ms']})"
                f" behind {d['behind']}, >1 ms behind {d['behind_over_1ms']}"
                for who, d in cell.sched.items()
            )
            if cell.sched
            else ""
        )
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render(cells: list[Cell], variants: Sequence[Any], args: argparse.Namespace) -> str:
    rows = []
    for operation in args.operations:
        for variant in variants:
            mine = [c for c in cells if c.variant == variant.key and c.operation == operation]
            if not mine:
                continue
            lat = {k: median([c.latency_ms[k] for c in mine]) for k in mine[0].latency_ms}
            p99s = sorted(c.latency_ms["p99"] for c in mine)
            splits = ", ".join("/".join(map(str, c.split)) for c in mine)
            gc_per_s = median(
                [
                    sum(c.probes.get(f"gc{g}", {}).get("count", 0) for g in range(3)) / c.seconds
                    for c in mine
                ]
            )
            gc_max = max(
                (c.probes.get(f"gc{g}", {}).get("max_s") or 0.0) for c in mine for g in range(3)
            )
            rows.append(
                f"| {operation} | {variant.key} | {median([c.rps for c in mine]):,.0f} | "
                f"{lat['p50']:.2f} / {lat['p90']:.2f} / {lat['p99']:.2f} / {lat['p99.9']:.2f} | "
                f"{p99s[0]:.2f}-{p99s[-1]:.2f} | {splits} | "
                f"{median([c.loop_wait_s / c.seconds * 1000 for c in mine]):.0f} / "
                f"{median([c.wrk_wait_s / c.seconds * 1000 for c in mine]):.0f} | "
                f"{gc_per_s:.0f} ({gc_max * 1000:.2f}) |"
            )
    behind = []
    for operation in args.operations:
        for variant in variants:
            mine = [
                c.sched
                for c in cells
                if c.variant == variant.key and c.operation == operation and c.sched
            ]
            for who, label in (("loop", "workers' loop threads"), ("wrk", "wrk")):
                if not mine:
                    continue
                kinds = sorted({k for m in mine for k in m[who]["behind"]})
                shares = ", ".join(
                    f"{k} {median([m[who]['behind'].get(k, 0.0) for m in mine]):.0f}%"
                    for k in kinds
                )
                behind.append(
                    f"| {operation} | {variant.key} | {label} | "
                    f"{median([m[who]['p99_ms'] for m in mine]):.2f} | "
                    f"{median([m[who]['over_1ms'] for m in mine]):.0f} | {shares} |"
                )
    if behind:
        behind = [
            "",
            f"What ran on the cores while a thread was ready and waited (`perf sched`, "
            f"{args.perf_sched:g} s of each cell; medians over cells):",
            "",
            "| operation | variant | thread | wait p99 ms | waits over 1 ms | CPU time meanwhile |",
            "|---|---|---|---:|---:|---|",
            *behind,
        ]
    return "\n".join(
        [
            HEADING,
            f"Machine: {bench_doc.machine()}; load average at the end {bench_doc.load_average()}.",
            f"Command: `python bench/kms_api_tail.py {' '.join(sys.argv[1:])}`. wrk (1 thread) "
            f"replays one signed request over HTTPS on {args.connections} keep-alive "
            f"connections against `strongroom server --workers {args.workers}`, "
            f"{args.duration:g} s per cell after {args.warmup:g} s of warm-up, {args.rounds} "
            "rounds with the variants alternated; medians over rounds.",
            "",
            "| operation | variant | req/s | p50 / p90 / p99 / p99.9 ms | p99 range ms | "
            "connections per worker | run-queue wait ms/s, loop threads / wrk | "
            "GC collections/s (longest ms) |",
            "|---|---|---:|---:|---:|---|---:|---:|",
            *rows,
            *behind,
            "",
        ]
    )
