"""Where a KMS API request's server CPU goes, layer by layer in µs, this checkout beside another.

One command for the per-layer table of ``docs/benchmarks.md`` (issue 19), before and after:

- in process, for Decrypt, Encrypt and GenerateDataKey: ``bench/kms_api_layers.py --json``
  run by this checkout's interpreter and by ``--compare PYTHON`` (another checkout's
  environment, e.g. main's), alternated round by round, the minimum per layer kept;
- over the wire, for the same operations at ``--connections`` keep-alive connections
  (``wrk``, one pre-signed request replayed): the server's CPU per request (all its
  processes, from ``/proc``) for ``--workers 1`` over HTTPS, ``--workers 1`` over plain
  HTTP and ``--workers 2`` over HTTPS, both checkouts' servers alternated round by round,
  medians kept.

TLS is then HTTPS less plain HTTP (one worker), the event loop and sockets plain HTTP less
the protocol and app measured in process, and the app is split by its parts. CPU per
request hardly depends on how busy the machine is, unlike requests per second, so this is
the comparison that holds on a shared machine. The section "KMS API CPU per request, layer
by layer" of ``docs/benchmarks.md`` is replaced (``--no-write`` leaves it alone).

    python bench/kms_api_hotpath.py --compare /path/to/main/.venv/bin/python
    python bench/kms_api_hotpath.py --compare PYTHON --rounds 1 --no-write   # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_doc
from kms_api_report import compare_revision, versions
from kms_api_servers import prepare_bodies, process_sched, process_tree, strongroom_target
from loadgen import run_wrk

HERE = Path(__file__).resolve().parent
SECTION = "## KMS API CPU per request, layer by layer (bench/kms_api_hotpath.py)"
OPERATIONS = ("Decrypt", "Encrypt", "GenerateDataKey")
WIRE = {
    "https1": ("--workers", "1"),
    "http1": ("--workers", "1", "--insecure-http"),
    "https2": ("--workers", "2"),
}
APP_PARTS = (
    ("request head", "request head"),
    ("SigV4", "SigV4"),
    ("JSON decode + shapes", "JSON decode + shapes"),
    ("key service call", "key service call"),
    ("response shapes + JSON", "response shapes + JSON"),
    ("metrics", "metrics"),
)


def layers(python: str, operation: str, calls: int, repeats: int) -> dict[str, float]:
    """``kms_api_layers.py`` run by ``python``: µs per layer."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                *(python, str(HERE / "kms_api_layers.py"), "--operation", operation),
                *("--calls", str(calls), "--repeats", str(repeats), "--json", out.name),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        found: dict[str, float] = json.loads(Path(out.name).read_text())["us"]
        return found


def wire_cpu(target: Any, operation: str, connections: int, seconds: float) -> float:
    """Server CPU µs per request over ``seconds`` of wrk (after a short warm-up)."""
    headers, body = target.signed(operation)
    run_wrk(target.endpoint, headers, body, connections, 0.5)
    pids = process_tree(target.root_pid)
    before = process_sched(pids)
    result = run_wrk(target.endpoint, headers, body, connections, seconds)
    after = process_sched(pids)
    if result["errors"] or result["non2xx"]:
        raise SystemExit(f"{target.label}: {result['errors']} errors, {result['non2xx']} non-200")
    cpu = sum(a.since(b)[0] for b, a in zip(before, after, strict=True))
    return cpu / max(1, int(result["requests"])) * 1e6


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of both checkouts: ``{"layers": {side: {op: {layer: µs}}}, "wire": ...}``."""
    sides = {"now": sys.executable, "before": args.compare}
    found: dict[str, Any] = {"layers": {}, "wire": {}}
    for round_no in range(args.rounds):
        for operation in OPERATIONS:
            order = list(sides.items()) if round_no % 2 == 0 else list(sides.items())[::-1]
            for side, python in order:
                got = layers(python, operation, args.calls, args.repeats)
                mine = found["layers"].setdefault(side, {}).setdefault(operation, {})
                for name, value in got.items():
                    mine[name] = min(mine.get(name, value), value)
                print(f"round {round_no + 1} {side:6s} {operation}: in process", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="kms-api-hotpath-") as tmp,
        contextlib.ExitStack() as st,
    ):
        targets = {}
        for side, python in sides.items():
            for config, flags in WIRE.items():
                key = f"{side}-{config}"
                target = st.enter_context(
                    strongroom_target(
                        Path(tmp), key, key, *flags, python=None if side == "now" else python
                    )
                )
                prepare_bodies(target)
                targets[(side, config)] = target
        for round_no in range(args.rounds * 2):
            for operation in OPERATIONS:
                for config in WIRE:
                    sides_now = ("now", "before") if round_no % 2 == 0 else ("before", "now")
                    for side in sides_now:
                        us = wire_cpu(
                            targets[(side, config)], operation, args.connections, args.seconds
                        )
                        cell = found["wire"].setdefault(side, {}).setdefault(operation, {})
                        cell.setdefault(config, []).append(us)
                        print(f"{side:6s} {operation} {config}: {us:.0f} µs", flush=True)
    return found


def table(found: dict[str, Any]) -> list[str]:
    """The per-layer rows, before and after, for every operation."""
    header = "| layer | " + " | ".join(f"{op}, before | {op}, now" for op in OPERATIONS) + " |"
    rows = [header, "|---|" + "---:|" * (2 * len(OPERATIONS))]

    def wire(side: str, op: str, config: str) -> float:
        return float(statistics.median(found["wire"][side][op][config]))

    def cell(side: str, op: str) -> dict[str, float]:
        got = dict(found["layers"][side][op])
        app = got["whole app"]
        protocol = got["HTTP protocol + whole app"] - app
        https1, http1 = wire(side, op, "https1"), wire(side, op, "http1")
        parts = sum(got[key] for key, _ in APP_PARTS)
        return {
            "TLS (HTTPS less plain HTTP, 1 worker)": https1 - http1,
            "event loop and sockets (plain HTTP less protocol and app)": http1 - protocol - app,
            "HTTP protocol (in process, no sockets)": protocol,
            **{label: got[key] for key, label in APP_PARTS},
            "app: the rest (glue, request objects, cache misses)": app - parts,
            "whole app, one request (in process)": app,
            "audit flush per event (background thread)": got["audit flush per event"],
            "**server CPU per request, HTTPS, 1 worker**": https1,
            "server CPU per request, plain HTTP, 1 worker": http1,
            "**server CPU per request, HTTPS, 2 workers**": wire(side, op, "https2"),
        }

    cells = {(side, op): cell(side, op) for side in ("before", "now") for op in OPERATIONS}
    for name in cells[("now", OPERATIONS[0])]:
        values = " | ".join(
            f"{cells[(side, op)][name]:.1f}" for op in OPERATIONS for side in ("before", "now")
        )
        rows.append(f"| {name} | {values} |")
    return rows


def render(found: dict[str, Any], args: argparse.Namespace, load_before: str) -> str:
    """The document section."""
    before = compare_revision(args.compare)
    now = versions("wrk").split(";")[0]
    command = "python bench/kms_api_hotpath.py --compare PYTHON" + (
        f" --rounds {args.rounds}" if args.rounds != 2 else ""
    )
    lines = [
        SECTION,
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}); before = strongroom {before}, "
        f"now = {now}; wrk, 1 thread. Machine: {bench_doc.machine()}. Load average "
        f"{load_before} before the run, {bench_doc.load_average()} after it.",
        "",
        "µs of CPU per request. In process (`bench/kms_api_layers.py`, minimum over "
        f"{args.rounds} alternated round(s)): each part of the app timed alone, the whole app "
        "for one request, and the HTTP protocol class the server uses fed the request bytes "
        "(less the whole app). Over the wire (medians of "
        f"{args.rounds * 2} alternated rounds of {args.seconds:g} s of wrk at "
        f"{args.connections} keep-alive connections): the server's CPU (all its processes, "
        "audit flush thread included) per request. TLS and the event loop are differences "
        "of those, so they carry the noise of both (a negative figure is noise larger than "
        "the layer: on a busy machine only the over-the-wire totals and the parts timed "
        "alone mean much).",
        "",
        *table(found),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="PYTHON", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--doc", type=Path, default=bench_doc.DOC)
    args = parser.parse_args()
    load_before = bench_doc.load_average()
    found = measure(args)
    if args.json:
        args.json.write_text(json.dumps(found, indent=1), encoding="utf-8")
    section = render(found, args, load_before)
    print(section)
    if not args.no_write:
        bench_doc.write_section(section, SECTION, args.doc)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
