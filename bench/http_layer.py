"""The server's HTTP/TLS/event-loop layer alone: CPU per request, the app a constant answer.

``bench/kms_api_hotpath.py`` gets the cost of TLS and the event loop as differences of
noisy over-the-wire totals. This measures the layer directly: one process serves a stub
app (the request head read into the app's ``RequestHead`` as ``KmsApi.inline_head`` does,
then a fixed 77-byte JSON answer) through

- ``strongroom``: the protocol class ``strongroom server`` workers use (uvicorn's httptools
  protocol with the connection guard and the inline path, ``server/inline_protocol.py``),
  on uvloop, with the server's TLS context settings and ``server/direct_ssl.py``;
- ``floor``: the least a Python server on uvloop can do per request (an ``asyncio.Protocol``
  that finds the end of each request and writes a fixed answer): the price of uvloop's
  sockets and TLS, what no protocol class can go below;
- ``granian`` (if installed: ``pip install granian``): granian 2 (Rust HTTP, rustls) calling
  the same stub through RSGI, one worker,

each replayed by ``wrk`` (one pre-signed-shaped Decrypt request, keep-alive connections),
alternated round by round; the server's CPU (all its processes) per request, medians.

    python bench/http_layer.py                      # HTTPS and plain HTTP, 64 connections
    python bench/http_layer.py --rounds 5 --no-plain-http
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kms_api_servers import granian_command, process_sched, process_tree, self_signed_cert
from loadgen import run_wrk

from strongroom.api.request import head_from
from strongroom.testing.server import free_port

HERE = Path(__file__).resolve().parent

PAYLOAD = b'{"KeyId":"x","Plaintext":"AAAA","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}'
JSON_11 = b"application/x-amz-json-1.1"
REQUEST_ID = "4f1c1a3e-1111-4222-8333-444455556666"
HEADERS = {
    "X-Amz-Target": "TrentService.Decrypt",
    "Content-Type": JSON_11.decode(),
    "X-Amz-Date": "20261206T080000Z",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAXXXXXXXXXXXXXXXX/20261206/us-east-1/kms/"
    "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "a" * 64,
}
BODY = b'{"CiphertextBlob": "' + b"A" * 200 + b'"}'
FLOOR_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: "
    + str(len(PAYLOAD)).encode()
    + b"\r\nx-amzn-requestid: "
    + REQUEST_ID.encode()
    + b"\r\n\r\n"
    + PAYLOAD
)
MODES = ("strongroom", "floor", "granian")


class StubApi:
    """``KmsApi``'s two inline methods with the key service replaced by a constant answer."""

    def inline_head(self, headers: list[tuple[str, str]], by_name: dict[str, list[str]]) -> Any:
        """The request head, read as the API reads it."""
        return head_from(headers, by_name)

    def serve_head(
        self, head: Any, body: bytes, url: bytes, client: str
    ) -> tuple[int, bytes, bytes, str]:
        """A fixed Decrypt answer."""
        return 200, PAYLOAD, JSON_11, REQUEST_ID

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("only the inline path is measured")


class Floor(asyncio.Protocol):
    """Find the end of each request (head and ``Content-Length`` body), write the answer."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            start = self.buffer.lower().find(b"content-length:", 0, end)
            length = int(self.buffer[start + 15 : self.buffer.find(b"\r\n", start)])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(FLOOR_ANSWER)


class RsgiStub:
    """granian's RSGI app: the head read as ``KmsApi.serve_inline`` does, the fixed answer."""

    def __init__(self) -> None:
        self.api = StubApi()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        body = await protocol()
        headers = [(k.lower(), v) for k, v in scope.headers.items()]
        by_name: dict[str, list[str]] = {}
        for name, value in headers:
            by_name.setdefault(name, []).append(value)
        status, payload, content_type, request_id = self.api.serve_head(
            self.api.inline_head(headers, by_name), body, b"/", ""
        )
        protocol.response_bytes(
            status,
            [("content-type", content_type.decode()), ("x-amzn-requestid", request_id)],
            payload,
        )


def rsgi_app() -> RsgiStub:
    """granian's factory (``--factory http_layer:rsgi_app``)."""
    return RsgiStub()


def serve(mode: str, port: int, tls: tuple[str, str] | None) -> None:
    """Serve ``mode`` (``strongroom`` or ``floor``) on ``port`` until killed."""
    import uvicorn
    import uvloop
    from uvicorn.server import ServerState

    from strongroom.server.direct_ssl import direct
    from strongroom.server.guard import ConnectionGuard, ConnectionLimits
    from strongroom.server.inline_protocol import InlineHttpProtocol
    from strongroom.tls.server_cert import new_server_context

    context = None
    if tls is not None:
        context = new_server_context()
        context.load_cert_chain(*tls)
        direct(context)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    factory: Any = Floor
    if mode == "strongroom":
        app = StubApi()
        cls = InlineHttpProtocol.bound_to(ConnectionGuard(ConnectionLimits()), app)  # type: ignore[arg-type]
        config = uvicorn.Config(
            app, loop="none", http=cls, lifespan="off", log_config=None, server_header=False
        )
        config.load()
        state = ServerState()

        def factory() -> Any:
            return cls(config=config, server_state=state, app_state={}, _loop=loop)

    loop.run_until_complete(loop.create_server(factory, "127.0.0.1", port, ssl=context))
    print("ready", flush=True)
    loop.run_forever()


@contextlib.contextmanager
def server(mode: str, tls: tuple[str, str] | None) -> Iterator[tuple[str, int]]:
    """Start ``mode``'s server; yield its endpoint and process id."""
    port = free_port()
    if mode == "granian":
        command = granian_command("http_layer:rsgi_app", port, 1, tls)
        process = subprocess.Popen(command, cwd=HERE, stdout=subprocess.DEVNULL)
        time.sleep(3)
    else:
        command = [sys.executable, __file__, "--serve", mode, "--port", str(port)]
        if tls is not None:
            command += ["--tls", *tls]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        process.stdout.readline()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT if mode == "granian" else signal.SIGKILL)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            for pid in process_tree(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.wait()


def cpu_per_request(endpoint: str, pid: int, connections: int, seconds: float) -> float:
    """Server CPU µs per request over ``seconds`` of wrk."""
    pids = process_tree(pid)
    before = process_sched(pids)
    result = run_wrk(endpoint, HEADERS, BODY, connections, seconds)
    after = process_sched(pids)
    if result["errors"] or result["non2xx"]:
        raise SystemExit(f"{endpoint}: {result['errors']} errors, {result['non2xx']} non-200")
    cpu = sum(a.since(b)[0] for b, a in zip(before, after, strict=True))
    return cpu / max(1, int(result["requests"])) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-plain-http", action="store_true")
    parser.add_argument("--serve", choices=MODES[:2], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tls", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, tuple(args.tls) if args.tls else None)
        return
    modes = [m for m in MODES if m != "granian"]
    with contextlib.suppress(ImportError):
        import granian  # noqa: F401

        modes.append("granian")
    with tempfile.TemporaryDirectory(prefix="http-layer-") as tmp:
        cert, key = (str(path) for path in self_signed_cert(Path(tmp)))
        for tls in [(cert, key)] + ([] if args.no_plain_http else [None]):
            found: dict[str, list[float]] = {mode: [] for mode in modes}
            with contextlib.ExitStack() as stack:
                running = {mode: stack.enter_context(server(mode, tls)) for mode in modes}
                for endpoint, pid in running.values():
                    cpu_per_request(endpoint, pid, args.connections, 1.0)  # warm up
                for round_no in range(args.rounds):
                    order = modes if round_no % 2 == 0 else modes[::-1]
                    for mode in order:
                        endpoint, pid = running[mode]
                        found[mode].append(
                            cpu_per_request(endpoint, pid, args.connections, args.seconds)
                        )
            label = "HTTPS" if tls else "plain HTTP"
            for mode, values in found.items():
                print(
                    f"{mode:10s} {label:10s} c={args.connections}: "
                    f"{statistics.median(values):6.1f} µs of server CPU per request "
                    f"(rounds: {', '.join(f'{v:.1f}' for v in values)})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
