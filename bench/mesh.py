"""Encryption in transit: the two-sidecar mTLS path against HAProxy and direct TLS, with wrk.

Starts, on loopback and in one run:

- **nginx** (one worker, ``return 200 "ok"``): the backend on a plain HTTP port, and the
  same server on a TLS 1.3 port with a server certificate of the mesh CA (path *direct*);
- **two sidecars**, ``strongroom mesh proxy --config`` processes (path *sidecars*):
  wrk -> plaintext -> sidecar A (outbound listener) -> mTLS -> sidecar B (inbound listener
  whose allow-list holds A's SPIFFE ID) -> plaintext -> nginx;
- **two HAProxy processes** doing the same two hops (path *haproxy*): HAProxy A, a
  plaintext frontend whose server line is ``ssl crt A.pem ca-file bundle.pem verify
  required``; HAProxy B, ``bind ... ssl crt B.pem ca-file bundle.pem verify required``;
  ``nbthread 1`` each, ``mode tcp`` (a byte relay, as the sidecars are), TLS 1.3 only.

The certificates (SVIDs of A and B, the nginx server certificate, the trust bundle) are
issued by a fresh :class:`~strongroom.mesh.identity.ca.MeshCA` and written to files that both the
sidecar policies and the HAProxy configurations point at. Before measuring, each path
answers one GET, and each B refuses a plaintext caller and a TLS caller without a
certificate.

Measured with ``wrk`` (one thread), each cell a warm-up and then a fixed duration:
requests/s and p50/p99 latency of small keep-alive GETs at 1 and 32 connections through
every path; and new connections per second through the sidecars and HAProxy (wrk sends
``Connection: close``: nginx closes after each response, so every request is a new
connection through both hops, and a new mTLS handshake between A and B). Each round
measures every cell once, the sidecars and HAProxy back to back; ``--rounds`` rounds;
tables show medians, ratios are medians (and ranges) of per-round ratios to HAProxy.
CPU time (user and system) of every process is read from ``/proc``. Socket errors and
non-2xx answers are counted. Results replace the section "Encryption in transit (mesh
sidecars vs HAProxy)" of ``docs/benchmarks.md`` (``--no-write`` leaves it alone).

Examples::

    python bench/mesh.py                 # 5 rounds of 5 s cells (about 6 to 9 minutes)
    python bench/mesh.py --quick         # 1 round of 2 s cells (under a minute)
    python bench/mesh.py --py-spy 10     # also profile the sidecars (needs py-spy)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import bench_doc
from mesh_proc import cpu_times, machine_busy, run_queue_wait, set_affinity, wait_for_quiet
from mesh_report import DOC, Cell, render, versions, write_doc
from mesh_servers import (
    Stack,
    http_get,
    issue_certificates,
    missing_tools,
    refused_without_certificate,
    tool,
)

PATHS = {
    # path: (entry process, URL scheme, process groups whose CPU is counted)
    "direct": ("nginx_tls", "https", {"b": "nginx"}),
    "sidecars": ("sidecar_a", "http", {"a": "sidecar_a", "b": "sidecar_b", "nginx": "nginx"}),
    "haproxy": ("haproxy_a", "http", {"a": "haproxy_a", "b": "haproxy_b", "nginx": "nginx"}),
}
PINNED_CPU = {"a": 0, "nginx": 0, "b": 1, "wrk": 1}
"""The pinned layout: each core runs one proxy and one end (wrk or nginx), both paths alike."""
LAYOUTS = ("pinned", "shared")

_LUA_DONE = """\
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"p50_ms\\": %f, \
\\"p99_ms\\": %f, \\"errors\\": %d, \\"non2xx\\": %d}\\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status))
end
"""


def wrk_scripts(folder: Path) -> dict[str, Path]:
    """The Lua scripts: keep-alive GETs, and GETs with ``Connection: close``."""
    scripts = {"keepalive": folder / "keepalive.lua", "new": folder / "close.lua"}
    scripts["keepalive"].write_text(_LUA_DONE, encoding="utf-8")
    scripts["new"].write_text('wrk.headers["Connection"] = "close"\n' + _LUA_DONE, "utf-8")
    return scripts


def run_wrk(
    url: str, script: Path, connections: int, seconds: float, cpu: int | None = None
) -> dict[str, float]:
    """One wrk run (one thread, on core ``cpu`` if given); its summary."""
    pin = [] if cpu is None else [tool("taskset"), "-c", str(cpu)]
    out = subprocess.run(
        [
            *pin,
            tool("wrk"),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    data: dict[str, float] = json.loads(line[5:])
    return data


def place(stack: Stack, path: str, layout: str) -> int | None:
    """Pin this path's processes (``pinned``) or free all of them; the core wrk runs on."""
    everything = set(range(os.cpu_count() or 1))
    set_affinity(stack.pids(*stack.procs), everything)
    if layout != "pinned":
        return None
    for group, name in PATHS[path][2].items():
        cpu = PINNED_CPU["nginx" if path == "direct" else group]
        set_affinity(stack.pids(name), {cpu})
    return PINNED_CPU["wrk"]


def measure(
    stack: Stack,
    scripts: dict[str, Path],
    path: str,
    mode: str,
    connections: int,
    args: argparse.Namespace,
    round_no: int,
    layout: str = "shared",
) -> Cell:
    """Warm up, then one measured run, with the CPU every process used meanwhile."""
    entry, scheme, groups = PATHS[path]
    url = f"{scheme}://127.0.0.1:{stack.ports[entry]}/"
    quiet = wait_for_quiet(args.quiet_below, args.quiet_wait) if args.quiet_wait else 0.0
    wrk_cpu = place(stack, path, layout)
    run_wrk(url, scripts[mode], connections, args.warmup, wrk_cpu)
    pids = {group: stack.pids(name) for group, name in groups.items()}
    all_pids = [pid for group in pids.values() for pid in group]
    cpu0 = {group: cpu_times(p) for group, p in pids.items()}
    wait0, busy0, kids0 = run_queue_wait(all_pids), machine_busy(), os.times()
    wall0 = time.monotonic()
    summary = run_wrk(url, scripts[mode], connections, args.duration, wrk_cpu)
    wall1 = time.monotonic()
    kids1, busy1, wait1 = os.times(), machine_busy(), run_queue_wait(all_pids)
    cpu, user = {}, {}
    for group, p in pids.items():
        (u0, s0), (u1, s1) = cpu0[group], cpu_times(p)
        cpu[group], user[group] = (u1 - u0) + (s1 - s0), u1 - u0
    user["wrk"] = kids1.children_user - kids0.children_user
    cpu["wrk"] = user["wrk"] + kids1.children_system - kids0.children_system
    return Cell(
        path=path,
        mode=mode,
        connections=connections,
        round=round_no,
        requests=int(summary["requests"]),
        seconds=float(summary["seconds"]),
        p50_ms=float(summary["p50_ms"]),
        p99_ms=float(summary["p99_ms"]),
        errors=int(summary["errors"]),
        non2xx=int(summary["non2xx"]),
        cpu=cpu,
        user=user,
        waited=wait1 - wait0,
        machine_cpu=busy1 - busy0,
        wall=wall1 - wall0,
        quiet_wait=quiet,
        layout=layout,
    )


def check_paths(stack: Stack) -> list[str]:
    """One GET through each path, and the mTLS listeners refuse callers without a certificate."""
    notes = []
    for path, (entry, scheme, _) in PATHS.items():
        status, body = http_get(stack.ports[entry], tls=scheme == "https")
        if status != 200 or body != b"ok\n":
            raise SystemExit(f"{path}: GET answered {status} {body[:100]!r}")
    for name in ("sidecar_b", "haproxy_b"):
        if not refused_without_certificate(stack.ports[name], stack.certs["bundle"]):
            raise SystemExit(f"{name} let a caller without a client certificate through")
        notes.append(name)
    return notes


def round_plan(round_no: int) -> list[tuple[str, str, int]]:
    """The cells of one round: (mode, path, connections).

    The two relays measured against each other always run back to back (so their ratio
    compares neighbours in time), in alternating order; direct TLS goes before or after.
    """
    pair = ["sidecars", "haproxy"] if round_no % 2 == 0 else ["haproxy", "sidecars"]
    keepalive = ["direct", *pair] if round_no % 4 < 2 else [*pair, "direct"]
    plan = [("keepalive", path, n) for n in (1, 32) for path in keepalive]
    return plan + [("new", path, n) for n in (1, 32) for path in pair]


def run_all(args: argparse.Namespace, folder: Path) -> tuple[list[Cell], dict[str, dict[str, int]]]:
    """Start everything, check it, measure every cell for every round, stop everything."""
    certs = issue_certificates(folder)
    stack = Stack(folder, certs)
    cells: list[Cell] = []
    try:
        stack.start()
        check_paths(stack)
        print(
            "paths ready: "
            + ", ".join(f"{p} via :{stack.ports[e]}" for p, (e, _, _) in PATHS.items()),
            flush=True,
        )
        scripts = wrk_scripts(folder)
        if (os.cpu_count() or 1) < 2 and args.layout != "shared":
            raise SystemExit("the pinned layout needs 2 cores: use --layout shared")
        layouts = LAYOUTS if args.layout == "both" else (args.layout,)
        for round_no in range(args.rounds):
            for layout in layouts if round_no % 2 == 0 else layouts[::-1]:
                for mode, path, connections in round_plan(round_no):
                    cell = measure(stack, scripts, path, mode, connections, args, round_no, layout)
                    cells.append(cell)
                    print(cell.line(), flush=True)
        if args.py_spy:
            from mesh_profile import profile_sidecars

            profile_sidecars(stack, scripts, args.py_spy, folder, args.py_spy_out)
    finally:
        stack.close()
    stats = {name: stack.sidecar_stats(name) for name in ("sidecar_a", "sidecar_b")}
    return cells, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2 s cells")
    parser.add_argument("--duration", type=float, help="seconds per cell (default 5; quick 2)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell")
    parser.add_argument("--rounds", type=int, help="rounds (median; default 5, quick 1)")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.3,
        help="before each cell, wait until other work keeps fewer cores busy",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="longest wait for that per cell, seconds (default 5; quick 2)",
    )
    parser.add_argument(
        "--py-spy",
        type=float,
        metavar="SECONDS",
        default=0.0,
        help="after the rounds, profile both sidecars with py-spy this long",
    )
    parser.add_argument("--py-spy-out", type=Path, help="keep py-spy's raw stacks here")
    parser.add_argument(
        "--layout",
        choices=("both", *LAYOUTS),
        default="both",
        help="pinned: proxy A and nginx on core 0, proxy B and wrk on core 1 (both paths "
        "alike); shared: the scheduler places everything; both (default): each round both",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to write the section")
    parser.add_argument("--raw", type=Path, help="also write every cell as JSON here")
    args = parser.parse_args()
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.rounds = args.rounds or (1 if args.quick else 5)
    if args.quiet_wait is None:
        args.quiet_wait = 2.0 if args.quick else 5.0
    missing = missing_tools()
    if missing:
        raise SystemExit("missing tools; install them with: " + "; ".join(missing))
    load_before, software = os.getloadavg(), versions()
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as folder:
        cells, stats = run_all(args, Path(folder))
    bench_doc.publish(render(cells, stats, args, load_before, software), cells, args, write_doc)


if __name__ == "__main__":
    main()
