"""The results of ``bench/mesh.py``: one measured cell, and its section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import bench_doc

ROOT = Path(__file__).resolve().parent.parent
DOC = bench_doc.DOC
SECTION = "## Encryption in transit (mesh sidecars vs HAProxy)"
LABELS = {
    "direct": "direct TLS to nginx",
    "sidecars": "two sidecars (strongroom mesh proxy)",
    "haproxy": "two HAProxy (nbthread 1)",
}
BASELINE = "haproxy"
TARGET_THROUGHPUT = 0.90
TARGET_NEW = 0.80
GROUPS = ("a", "b", "nginx", "wrk")


@dataclass
class Cell:
    """One measured run: a path, keep-alive or new connections, N connections, a round."""

    path: str
    mode: str
    connections: int
    round: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int
    cpu: dict[str, float] = field(default_factory=dict)
    user: dict[str, float] = field(default_factory=dict)
    waited: float = 0.0
    machine_cpu: float = 0.0
    wall: float = 0.0
    quiet_wait: float = 0.0
    layout: str = "shared"

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def others_cores(self) -> float:
        """Cores' worth of CPU that none of the benchmark's processes used meanwhile."""
        ours = sum(self.cpu.values())
        return max(0.0, self.machine_cpu - ours) / self.wall if self.wall else 0.0

    def cpu_us(self, group: str, *, user_only: bool = False) -> float:
        """CPU microseconds per request of one process group (``nan`` if not in this path)."""
        source = self.user if user_only else self.cpu
        if group not in source or not self.requests:
            return float("nan")
        return source[group] / self.requests * 1e6

    def line(self) -> str:
        per = "  ".join(f"{g} {self.cpu_us(g):4.0f}" for g in GROUPS if g in self.cpu)
        return (
            f"  r{self.round} {self.layout:6s} {self.mode:9s} c={self.connections:<3d} "
            f"{self.path:9s} "
            f"{self.rps:9,.0f} req/s  p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms  "
            f"cpu us/req: {per}  others {self.others_cores:.2f} cores  "
            f"errors {self.errors} non-2xx {self.non2xx}"
        )


Grid = dict[tuple[str, str, int], list[Cell]]


def grid(cells: list[Cell]) -> Grid:
    out: Grid = {}
    for cell in cells:
        out.setdefault((cell.path, cell.mode, cell.connections), []).append(cell)
    return out


def med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def ratios(g: Grid, path: str, mode: str, n: int) -> list[float]:
    """This path's req/s over HAProxy's in the same round, for every round."""
    return bench_doc.round_ratios(g.get((path, mode, n), []), g.get((BASELINE, mode, n), []))


def ratio(g: Grid, path: str, mode: str, n: int) -> float:
    """Median over rounds of this path's req/s over HAProxy's in the same round."""
    return med(ratios(g, path, mode, n))


def _run(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    except OSError:
        return ""
    return (done.stdout + done.stderr).strip()


def machine() -> str:
    """The machine line of the report."""
    return bench_doc.machine()


def versions() -> str:
    from importlib.metadata import version

    commit = _run("git", "rev-parse", "--short", "HEAD") or "?"
    if _run("git", "status", "--porcelain", "--", "src"):
        commit += " plus uncommitted changes in src/"
    haproxy = _run("haproxy", "-vv") or _run("/usr/sbin/haproxy", "-vv")
    hap = re.search(r"HAProxy version (\S+)", haproxy)
    hap_ssl = re.search(r"Running on OpenSSL version : (OpenSSL \S+)", haproxy)
    nginx = re.search(r"nginx/(\S+)", _run("nginx", "-v") or _run("/usr/sbin/nginx", "-v"))
    wrk = (_run("wrk", "-v").splitlines() or ["wrk ?"])[0].split(" [")[0]
    return (
        f"strongroom at {commit}, uvloop {version('uvloop')}; "
        f"HAProxy {hap.group(1) if hap else '?'} "
        f"({hap_ssl.group(1) if hap_ssl else 'OpenSSL ?'}); "
        f"nginx {nginx.group(1) if nginx else '?'}; {wrk}"
    )


def _fmt(value: float, spec: str = ",.0f") -> str:
    return "n/a" if value != value else format(value, spec)


def _table(g: Grid, mode: str, paths: tuple[str, ...], unit: str) -> list[str]:
    lines = [
        f"| path | connections | {unit} | vs HAProxy (range) | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n in sorted({k[2] for k in g if k[1] == mode}):
        for path in paths:
            cells = g.get((path, mode, n), [])
            if not cells:
                continue
            found = ratios(g, path, mode, n)
            spread = f" ({min(found):.0%}-{max(found):.0%})" if len(found) > 1 else ""
            versus = "" if path == BASELINE else f"{_fmt(med(found) * 100, '.0f')}%{spread}"
            lines.append(
                f"| {LABELS[path]} | {n} | {_fmt(med([c.rps for c in cells]))} | {versus} | "
                f"{_fmt(med([c.p50_ms for c in cells]), '.2f')} | "
                f"{_fmt(med([c.p99_ms for c in cells]), '.2f')} |"
            )
    return lines


def _order(item: tuple[tuple[str, str, int], list[Cell]]) -> tuple[str, int, int]:
    (path, mode, n), _ = item
    return mode, n, list(LABELS).index(path)


def _cpu_table(g: Grid) -> list[str]:
    lines = [
        "| cell | path | A user + sys | B user + sys | nginx | wrk | all | proxies waited "
        "(cores) | others (cores) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (path, mode, n), cells in sorted(g.items(), key=_order):
        split = []
        for grp in ("a", "b"):
            user = med([c.cpu_us(grp, user_only=True) for c in cells])
            total = med([c.cpu_us(grp) for c in cells])
            split.append("n/a" if total != total else f"{_fmt(user)} + {_fmt(total - user)}")
        rest = [_fmt(med([c.cpu_us(grp) for c in cells])) for grp in ("nginx", "wrk")]
        total = med([sum(c.cpu.values()) / c.requests * 1e6 for c in cells if c.requests])
        waited = med([c.waited / c.wall for c in cells if c.wall])
        others = med([c.others_cores for c in cells])
        lines.append(
            f"| {mode} c={n} | {LABELS[path]} | {' | '.join(split + rest)} | {_fmt(total)} | "
            f"{_fmt(waited, '.2f')} | {_fmt(others, '.2f')} |"
        )
    return lines


def cpu_per_request(g: Grid, path: str, mode: str, n: int, groups: tuple[str, ...]) -> float:
    """Median over rounds of the CPU microseconds per request of these process groups."""
    return med(
        [
            sum(c.cpu.get(grp, 0.0) for grp in groups) / c.requests * 1e6
            for c in g.get((path, mode, n), [])
            if c.requests
        ]
    )


def verdicts(g: Grid) -> list[str]:
    """One line per target and connection count: met or not, with the measured ratio.

    Each line also gives the ratio of CPU per request (HAProxy's over the sidecars', for
    the whole path with nginx and wrk): the throughput ratio to expect when the path has
    the cores to itself and is CPU-bound, which other work on the machine disturbs less
    than it disturbs requests/s.
    """
    out = []
    for mode, target, what in (
        ("keepalive", TARGET_THROUGHPUT, "keep-alive throughput"),
        ("new", TARGET_NEW, "new mTLS connections/s"),
    ):
        for n in sorted({k[2] for k in g if k[1] == mode}):
            r = ratio(g, "sidecars", mode, n)
            side = med([c.rps for c in g.get(("sidecars", mode, n), [])])
            base = med([c.rps for c in g.get((BASELINE, mode, n), [])])
            ok = "met" if r >= target else "NOT met"
            cpu_side = cpu_per_request(g, "sidecars", mode, n, GROUPS)
            cpu_base = cpu_per_request(g, BASELINE, mode, n, GROUPS)
            proxies_side = cpu_per_request(g, "sidecars", mode, n, ("a", "b"))
            proxies_base = cpu_per_request(g, BASELINE, mode, n, ("a", "b"))
            by_cpu = "met" if cpu_base / cpu_side >= target else "not met"
            out.append(
                f"- {what} at least {target:.0%} of HAProxy's, {n} connection(s): **{ok}**: "
                f"{_fmt(r * 100, '.0f')}% ({_fmt(side)} against {_fmt(base)}/s). By CPU per "
                f"request ({by_cpu}): the whole sidecar path used {_fmt(cpu_side)} µs, "
                f"HAProxy's {_fmt(cpu_base)} µs ({_fmt(cpu_base / cpu_side * 100, '.0f')}%); "
                f"the two proxies alone {_fmt(proxies_side)} against {_fmt(proxies_base)} µs."
            )
    return out


def _counters(stats: dict[str, dict[str, int]]) -> str:
    a, b = stats.get("sidecar_a", {}), stats.get("sidecar_b", {})
    if not a or not b:
        return "The sidecars did not log their counters."
    hs, resumed = a.get("peer_handshakes", 0), a.get("peer_resumed", 0)
    hits, misses = a.get("pool_hits", 0), a.get("pool_misses", 0)
    return (
        f"Sidecar counters over the whole run: A made {hs:,} mTLS handshakes to B, "
        f"{resumed:,} of them resumed ({resumed / hs if hs else 0:.0%}); its pool of ready "
        f"connections served {hits:,} client connections and missed {misses:,}; B accepted "
        f"{b.get('accepted', 0):,} callers, denied {b.get('denied', 0)}, and failed "
        f"{b.get('handshake_failures', 0)} handshakes (the two refusal checks before the run "
        f"are two of them); failed connects or refused peers: A {a.get('peer_refused', 0)}, "
        f"B's upstream {b.get('upstream_failures', 0)}."
    )


LAYOUT_ORDER = ("pinned", "shared")
LAYOUT_TITLES = {
    "pinned": "Pinned layout (proxy A and nginx on core 0, proxy B and wrk on core 1)",
    "shared": "Shared cores (nothing pinned)",
}


def _layout_part(g: Grid, layout: str) -> list[str]:
    """The tables and verdicts of one layout."""
    return [
        f"### {LAYOUT_TITLES[layout]}",
        "",
        "Small requests over keep-alive connections (requests/s, median):",
        "",
        *_table(g, "keepalive", ("direct", "sidecars", "haproxy"), "requests/s"),
        "",
        "New connections through both hops (connections/s = requests/s, median):",
        "",
        *_table(g, "new", ("sidecars", "haproxy"), "connections/s"),
        "",
        "CPU per request in µs (median over rounds; from `/proc`, 10 ms ticks): A and B are "
        "the two proxies, user + system time (for the direct path, B is nginx terminating "
        "TLS); 'all' adds nginx and wrk; 'proxies waited' is their scheduler "
        "run-queue wait (ready to run, no free core) in cores' worth; 'others' is CPU the "
        "rest of the machine used meanwhile, in cores:",
        "",
        *_cpu_table(g),
        "",
        f"Targets (issue 6), {layout}:",
        "",
        *verdicts(g),
        "",
    ]


def render(
    cells: list[Cell],
    stats: dict[str, dict[str, int]],
    args: argparse.Namespace,
    load_before: tuple[float, float, float],
    software: str,
) -> str:
    """The section: ``software`` is :func:`versions` as read when the run started."""
    today = datetime.date.today().isoformat()
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/mesh.py", *sys.argv[1:]])
    load = ", ".join(f"{x:.1f}" for x in load_before)
    load_after = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    others = [c.others_cores for c in cells]
    errors = sum(c.errors for c in cells)
    non2xx = sum(c.non2xx for c in cells)
    bad = sorted({f"{c.path} {c.mode} c={c.connections}" for c in cells if c.errors or c.non2xx})
    gave_up = sum(1 for c in cells if args.quiet_wait and c.quiet_wait >= args.quiet_wait)
    lines = [
        SECTION,
        f"Command: `{command}` ({today}). Machine: {machine()}. {software}. "
        f"Load average (1, 5, 15 min, `uptime`) {load} before the run, {load_after} after.",
        "",
        "Paths, all on 127.0.0.1: **direct**: wrk -> TLS 1.3 -> nginx. **sidecars**: wrk -> "
        "plaintext -> sidecar A (outbound listener) -> mTLS -> sidecar B (inbound listener, "
        "allow-list = A's SPIFFE ID) -> plaintext -> nginx; two `strongroom mesh proxy "
        "--config` processes (uvloop, one thread each; SVIDs from files, outbound pool of 4 "
        "ready connections and TLS 1.3 session resumption as by default). **haproxy**: the "
        "same two hops through two Debian HAProxy processes, `nbthread 1` each, `mode tcp` "
        "(a byte relay like the sidecars), A's server line `ssl crt A.pem ca-file bundle.pem "
        "verify required ssl-min-ver TLSv1.3`, B's `bind ... ssl crt B.pem ca-file "
        "bundle.pem verify required ssl-min-ver TLSv1.3`; HAProxy checks the chain only, "
        "not the SPIFFE IDs the sidecars check. All certificates (ECDSA P-256 SVIDs of A and "
        "B, nginx's server certificate, the trust bundle) come from one `MeshCA`. Backend: "
        'nginx, one worker, `return 200 "ok"`, keep-alive unlimited.',
        "",
        f"Load: wrk, one thread; each cell {args.warmup:g} s warm-up then {args.duration:g} s "
        f"measured; {args.rounds} round(s), each measuring every cell once with the sidecars "
        f"and HAProxy back to back (in alternating order); medians over rounds; 'vs HAProxy' "
        f"is the median (and the range) of the per-round ratios. Keep-alive cells send small "
        f"GETs (3-byte answer) over N persistent connections. New-connection cells send "
        f"`Connection: close`: nginx closes after each answer, the close runs back through "
        f"both hops, wrk reconnects, so every request is a new TCP connection to A, a new "
        f"mTLS connection A -> B (a resumed TLS 1.3 handshake where the proxy resumes) and a "
        f"new connection B -> nginx.",
        "",
        "Two layouts on the machine's cores, each measured in every round (in alternating "
        "order): **pinned**, every process held to one core, the same for both relays: "
        "proxy A and nginx on core 0, proxy B and wrk on core 1 (for the direct path nginx "
        "on 0, wrk on 1); **shared**, nothing pinned, the kernel's scheduler places wrk, "
        "both proxies and nginx on the cores as it likes. The pinned layout compares the "
        "relays' own work; with shared cores the scheduler's placement moves the figures "
        "of either relay by up to a third between runs of a few seconds, which the medians "
        "and the paired ratios only partly cancel.",
        "",
    ]
    for layout in LAYOUT_ORDER:
        chosen = [c for c in cells if c.layout == layout]
        if chosen:
            lines += _layout_part(grid(chosen), layout)
    lines += [
        f"Errors: {errors} socket errors and {non2xx} non-2xx responses in all cells"
        + (f" (in: {'; '.join(bad)})." if bad else ".")
        + ' Before measuring, each path answered a GET with 200 "ok", and sidecar B and '
        "HAProxy B each refused a plaintext caller and a TLS caller without a certificate.",
        _counters(stats),
        f"Other work on the machine used {med(others):.2f} cores (median over cells; max "
        f"{max(others, default=0):.2f}) while cells ran; before each cell the run waited up "
        f"to {args.quiet_wait:g} s for it to drop under {args.quiet_below:g} cores "
        f"({gave_up} cells started without that). With it, absolute figures are lower and "
        f"noisier than on an idle machine; the paired ratios hold up better.",
    ]
    return "\n".join(lines) + "\n"


def write_doc(section: str, path: Path) -> None:
    """Replace this benchmark's section (its heading to the next ``## ``), or append it."""
    bench_doc.write_section(section, SECTION, path)
