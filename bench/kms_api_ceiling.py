"""How many HTTPS requests a second this machine allows, and what a Python server can reach.

``bench/kms_api.py`` measures ``strongroom server``; this measures the floor under it, in
one run, on the same request (a SigV4-signed Decrypt, replayed by ``wrk`` over HTTPS on
keep-alive connections) and the same 2 cores shared with the client:

- **nginx** (if installed), 2 worker processes, answering a fixed Decrypt-sized JSON body:
  what the machine's TLS, loopback and client allow;
- **uvloop, null**: 2 Python processes on one shared listening socket, uvloop's TLS (what
  ``strongroom server`` runs on) and ``bench/http_layer.py``'s floor protocol (find each
  request's end, write a fixed answer): the least Python a request can cost on this event
  loop, so no server built on it can be faster;
- **granian, null** (if installed): granian's Rust HTTP and TLS with 2 workers, each
  request handed to ``bench/http_layer.py``'s RSGI stub (reads the body and the head as
  the API does, answers the fixed body): the same floor for a compiled front;
- **strongroom**: ``strongroom server --workers 2`` serving the real Decrypt (SigV4,
  authorisation, audit).

For each it reports requests per second at 64 connections, p99 at 16, and CPU per request
of the server's processes and of the client. The section "KMS API ceiling on this machine"
of ``docs/benchmarks.md`` gets the table (``--no-write`` leaves it alone).

    python bench/kms_api_ceiling.py                 # 3 rounds of 5 s cells
    python bench/kms_api_ceiling.py --rounds 1 --no-write

Needs ``wrk`` and ``openssl`` (Debian packages); nginx and granian are optional.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_doc
from http_layer import PAYLOAD, Floor
from kms_api_servers import (
    granian_command,
    prepare_bodies,
    process_sched,
    process_tree,
    self_signed_cert,
    strongroom_target,
)
from loadgen import presign, run_wrk

from strongroom.testing.server import free_port

HEADING = "## KMS API ceiling on this machine (bench/kms_api_ceiling.py)"
FAR = {"AccessKeyId": "AKIDCEILING000000000", "SecretAccessKey": "unused", "Region": "us-east-1"}


@dataclass
class Cell:
    """One measurement: a server at a number of connections in one round."""

    server: str
    connections: int
    round: int
    rps: float
    p99_ms: float
    server_us: float
    client_us: float
    errors: int


# --- the null Python server (run as ``--serve-null``) ------------------------------------


def serve_null(port: int, cert: str, key: str, workers: int) -> None:
    """``bench/http_layer.py``'s floor protocol on uvloop with TLS, in ``workers`` forks."""
    import asyncio

    import uvloop

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Floor, sock=listener, ssl=context, backlog=1024)
        await server.serve_forever()

    uvloop.run(main())


# --- the servers under test -------------------------------------------------------------


@contextlib.contextmanager
def process(args: list[str], port: int, cwd: Path | None = None) -> Iterator[int]:
    """Run a server process until the block ends; yield its pid once the port answers."""
    proc = subprocess.Popen(
        args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{args[0]} exited with status {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{args[0]} did not start") from None
                time.sleep(0.1)
        time.sleep(1.0)  # let every worker process come up, not only the first
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(10)


def nginx_args(base: Path, port: int, cert: Path, key: Path) -> list[str] | None:
    """nginx with 2 workers answering the payload over TLS, or None when nginx is not installed."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        return None
    body = PAYLOAD.decode().replace("'", "\\'")
    (base / "nginx.conf").write_text(
        f"""worker_processes 2;
pid {base}/nginx.pid;
error_log {base}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path {base}/nginx-body;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      default_type application/x-amz-json-1.1;
      add_header x-amzn-requestid 00000000-0000-4000-8000-000000000000;
      return 200 '{body}';
    }}
  }}
}}
""",
        encoding="utf-8",
    )
    return [nginx, "-p", str(base), "-c", str(base / "nginx.conf"), "-g", "daemon off;"]


def measure(
    name: str,
    pid: int,
    endpoint: str,
    signed: tuple[dict[str, str], bytes],
    conns: int,
    seconds: float,
    round_: int,
) -> Cell:
    """One cell: warm up, then replay for ``seconds`` and account both sides' CPU."""
    headers, body = signed
    run_wrk(endpoint, headers, body, conns, 1.0)
    pids = process_tree(pid)
    before = process_sched(pids)
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_wrk(endpoint, headers, body, conns, seconds)
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = process_sched(pids)
    requests = max(1, result["requests"])
    server = sum(a.since(b)[0] for a, b in zip(after, before, strict=True))
    client = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    return Cell(
        name,
        conns,
        round_,
        round(result["rps"], 1),
        round(result["p99_ms"], 2),
        round(server / requests * 1e6, 1),
        round(client / requests * 1e6, 1),
        result["errors"] + result["non2xx"],
    )


def render(cells: list[Cell], args: argparse.Namespace) -> str:
    """The section: one row per server, medians over the rounds."""
    rows = []
    order = list(dict.fromkeys(c.server for c in cells))
    for name in order:
        at64 = [c for c in cells if c.server == name and c.connections == 64]
        at16 = [c for c in cells if c.server == name and c.connections == 16]
        rows.append(
            f"| {name} | {statistics.median(c.rps for c in at64):,.0f} "
            f"| {statistics.median(c.server_us for c in at64):.0f} "
            f"| {statistics.median(c.client_us for c in at64):.0f} "
            f"| {statistics.median(c.p99_ms for c in at16):.1f} "
            f"| {sum(c.errors for c in at64 + at16)} |"
        )
    command = "python bench/kms_api_ceiling.py" + (
        f" --rounds {args.rounds}" if args.rounds != 3 else ""
    )
    return (
        f"{HEADING}\n\n"
        f"Machine: {bench_doc.machine()}; load average at the end {bench_doc.load_average()}.\n"
        f"Command: `{command}`. wrk (1 thread) replays one signed Decrypt over HTTPS on "
        f"keep-alive connections, {args.seconds:g} s per cell after 1 s of warm-up, "
        f"{args.rounds} rounds alternating the servers; medians. CPU per request is the "
        f"server's processes' and the client's (wrk's), from /proc and getrusage.\n\n"
        "| server (2 processes each) | req/s at 64 conns | server CPU µs/req | client CPU µs/req "
        "| p99 ms at 16 conns | errors |\n|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--doc", type=Path, default=bench_doc.DOC)
    parser.add_argument("--raw", type=Path, help="also write every cell as JSON here")
    parser.add_argument("--serve-null", nargs=3, metavar=("PORT", "CERT", "KEY"))
    args = parser.parse_args()
    if args.serve_null:
        port, cert, key = args.serve_null
        serve_null(int(port), cert, key, 2)
        return
    here = Path(__file__).resolve().parent
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="kms-ceiling-") as tmp, contextlib.ExitStack() as stack:
        base = Path(tmp)
        cert, key = self_signed_cert(base)
        targets: list[tuple[str, int, str, tuple[dict[str, str], bytes]]] = []
        target = stack.enter_context(strongroom_target(base, "sr", "strongroom", "--workers", "2"))
        prepare_bodies(target)
        signed = target.signed("Decrypt")
        targets.append(("strongroom server, Decrypt", target.root_pid, target.endpoint, signed))

        def fixed(endpoint: str) -> tuple[dict[str, str], bytes]:
            # the same request shape and size as strongroom's, signed for this endpoint
            return presign(endpoint, FAR, "Decrypt", target.bodies["Decrypt"])

        port = free_port()
        pid = stack.enter_context(
            process(
                [sys.executable, __file__, "--serve-null", str(port), str(cert), str(key)], port
            )
        )
        targets.append(
            (
                "uvloop, null (floor)",
                pid,
                f"https://127.0.0.1:{port}",
                fixed(f"https://127.0.0.1:{port}"),
            )
        )
        try:
            import granian  # noqa: F401
        except ImportError:
            print("granian is not installed: its row is left out")
        else:
            port = free_port()
            pid = stack.enter_context(
                process(
                    granian_command(
                        "http_layer:rsgi_app", port, 2, (str(cert), str(key)), websockets=False
                    ),
                    port,
                    cwd=here,
                )
            )
            targets.append(
                (
                    "granian (Rust HTTP+TLS), null",
                    pid,
                    f"https://127.0.0.1:{port}",
                    fixed(f"https://127.0.0.1:{port}"),
                )
            )
        port = free_port()
        nginx = nginx_args(base, port, cert, key)
        if nginx is None:
            print("nginx is not installed: its row is left out")
        else:
            pid = stack.enter_context(process(nginx, port))
            targets.append(
                (
                    "nginx, fixed answer",
                    pid,
                    f"https://127.0.0.1:{port}",
                    fixed(f"https://127.0.0.1:{port}"),
                )
            )
        for round_ in range(args.rounds):
            for conns in (64, 16):
                for name, pid, endpoint, request in targets:
                    if name.startswith("strongroom"):
                        request = target.signed("Decrypt")
                    cell = measure(name, pid, endpoint, request, conns, args.seconds, round_)
                    print(cell, flush=True)
                    cells.append(cell)
    bench_doc.publish(
        render(cells, args),
        cells,
        args,
        lambda section, doc: bench_doc.write_section(section, HEADING, doc),
    )


if __name__ == "__main__":
    main()
