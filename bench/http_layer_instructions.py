"""The HTTP/TLS layer's instructions and system calls per request: steady on a busy machine.

``bench/http_layer.py`` times the layer over the wire, and timings here swing 10-20% while
other work runs. This serves the same thing (``http_layer.py --serve strongroom`` or
``floor``: the server's protocol class with a constant app, or the null uvloop protocol,
over TLS) under ``valgrind --tool=callgrind`` (or ``strace -c -f``), opens ``-c`` keep-alive
TLS connections, warms them up, then zeroes the counters and sends exactly ``-n`` requests
on each (one at a time per connection) and reads the counts: instructions (user space:
Python, httptools, uvloop, OpenSSL) or system calls per request. With ``--python`` and
``--bench`` another checkout's interpreter and ``http_layer.py`` serve instead (its own stub:
compare like with like). Prints only; needs Debian's ``valgrind`` and ``strace``.

    python bench/http_layer_instructions.py                 # instructions, strongroom + floor
    python bench/http_layer_instructions.py --strace
    python bench/http_layer_instructions.py --python ../base/.venv/bin/python \\
        --bench ../base/bench/http_layer.py --modes strongroom
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_layer import BODY, HEADERS
from kms_api_servers import self_signed_cert

from strongroom.testing.server import free_port

HERE = Path(__file__).resolve().parent
REQUEST = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    + b"".join(f"{name}: {value}\r\n".encode() for name, value in HEADERS.items())
    + b"Content-Length: %d\r\n\r\n" % len(BODY)
    + BODY
)
_LENGTH = re.compile(rb"content-length: (\d+)", re.IGNORECASE)


async def _connection(
    port: int, context: ssl.SSLContext, ready: asyncio.Future[None], go: asyncio.Event, n: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)

    async def one() -> None:
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        found = _LENGTH.search(head)
        assert found is not None and head.startswith(b"HTTP/1.1 200"), head
        await reader.readexactly(int(found.group(1)))

    for _ in range(30):
        await one()
    ready.set_result(None)
    await go.wait()
    for _ in range(n):
        await one()
    writer.close()


async def _drive(
    port: int, connections: int, n: int, before: Callable[[], None], after: Callable[[], None]
) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    go = asyncio.Event()
    loop = asyncio.get_running_loop()
    readies: list[asyncio.Future[None]] = [loop.create_future() for _ in range(connections)]
    tasks = [asyncio.create_task(_connection(port, context, r, go, n)) for r in readies]
    await asyncio.gather(*readies)
    before()
    go.set()
    await asyncio.gather(*tasks)
    after()


def _serve(
    args: argparse.Namespace, mode: str, tls: list[str], prefix: list[str]
) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    command = [*prefix, args.python, args.bench, "--serve", mode, "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--tls", *tls], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    process.stdout.readline()  # "ready"
    return process, port


def instructions(args: argparse.Namespace, mode: str, tls: list[str], tmp: str) -> str:
    """Instructions per request of ``mode``'s server process (callgrind)."""
    out = f"{tmp}/callgrind.{mode}"
    process, port = _serve(
        args, mode, tls, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    )

    def control(*what: str) -> None:
        subprocess.run(
            ["callgrind_control", *what, str(process.pid)], capture_output=True, check=False
        )

    asyncio.run(
        _drive(port, args.c, args.n, lambda: control("-z"), lambda: control("--dump=measured"))
    )
    time.sleep(0.5)
    process.kill()
    process.wait()
    dump = sorted(Path(tmp).glob(f"callgrind.{mode}.*"))[-1].read_text()
    found = re.search(r"^(?:summary|totals): (\d+)", dump, re.MULTILINE)
    assert found is not None
    return f"{int(found.group(1)) / (args.c * args.n):,.0f} instructions per request"


def syscalls(args: argparse.Namespace, mode: str, tls: list[str], tmp: str) -> str:
    """System calls per request of ``mode``'s server process, by name (strace)."""
    process, port = _serve(args, mode, tls, [])
    out = f"{tmp}/strace.{mode}"
    tracer: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        command = ["strace", "-c", "-f", "-o", out, "-p", str(process.pid)]
        tracer.append(subprocess.Popen(command, stderr=subprocess.DEVNULL))
        time.sleep(0.5)  # attached

    def stop() -> None:
        tracer[0].send_signal(signal.SIGINT)
        tracer[0].wait()

    asyncio.run(_drive(port, args.c, args.n, start, stop))
    process.kill()
    process.wait()
    counts: dict[str, float] = {}
    for line in Path(out).read_text().splitlines():
        row = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if row and row.group(2) != "total":
            counts[row.group(2)] = int(row.group(1)) / (args.c * args.n)
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    named = ", ".join(f"{name} {count:.3f}" for name, count in ranked if count >= 0.001)
    return f"{sum(counts.values()):.3f} system calls per request ({named})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the serving interpreter")
    parser.add_argument("--bench", default=str(HERE / "http_layer.py"), help="its http_layer.py")
    parser.add_argument("--modes", nargs="+", default=["strongroom", "floor"])
    parser.add_argument("--strace", action="store_true", help="system calls, not instructions")
    parser.add_argument("-c", type=int, default=8, help="keep-alive connections")
    parser.add_argument("-n", type=int, default=200, help="requests per connection")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="http-layer-counts-") as tmp:
        tls = [str(path) for path in self_signed_cert(Path(tmp))]
        for mode in args.modes:
            count = (syscalls if args.strace else instructions)(args, mode, tls, tmp)
            print(f"{mode:10s} HTTPS c={args.c} n={args.n}: {count}", flush=True)


if __name__ == "__main__":
    main()
