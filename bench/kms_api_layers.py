"""CPU per request of each layer of the KMS API, measured in process (no sampling).

On a shared machine a sampling profiler of a server under load is mostly noise (a
preempted process is sampled where it stopped, for as long as it waits). This times each
layer of one signed request on its own, in this process, with the installed code, as the
minimum over interleaved repetitions of CPU time (``time.thread_time``) per call:

- the API's parts: request head, SigV4 verification, JSON decode and shapes, the key
  service call (authorisation, audit queueing, crypto), response encoding, metrics, and the
  audit flush per event (SQLite append and hash chain, done by a background thread in the
  server);
- the whole app for one request (``KmsApi.serve_inline``, or the ASGI call where the code
  has no inline path), and the whole HTTP protocol with the app (uvicorn's httptools
  protocol class the server uses, fed the request bytes, with an in-memory transport);

TLS and the event loop (sockets, epoll) are the difference between the protocol figure
and the server's CPU per request measured over the wire (``bench/kms_api.py`` reports it
for HTTPS and plain HTTP). Run it in two checkouts' environments to compare them.

    python bench/kms_api_layers.py                 # Decrypt
    python bench/kms_api_layers.py --operation Encrypt --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import inspect
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import presign, raw_request

from strongroom.api import create_app
from strongroom.api.json_body import decode_body, encode_body
from strongroom.api.request import read_head
from strongroom.api.sigv4 import SignedRequest
from strongroom.kms import KeyService
from strongroom.ports import SystemClock
from strongroom.rootkey import LocalRootOfTrust
from strongroom.server.guard import ConnectionGuard, ConnectionLimits
from strongroom.server.runtime import CachedBackend
from strongroom.server.settings import HOT_OPERATIONS
from strongroom.store import SqliteStore

METRICS_BATCH = 64
"""Requests counted per event-loop iteration in the metrics row (64 connections' worth)."""


def per_call(fn: Callable[[], Any], calls: int, repeats: int) -> float:
    """Minimum over ``repeats`` of µs of CPU per call of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.thread_time() - start) / calls * 1e6)
    return best


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8443), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def protocol_class(app: Any) -> Any:
    """The protocol class the server's workers use (with the inline path, if there is one)."""
    guard = ConnectionGuard(ConnectionLimits())
    try:
        from strongroom.server.inline_protocol import InlineHttpProtocol
    except ImportError:
        from strongroom.server.guarded_protocol import GuardedHttpToolsProtocol

        return GuardedHttpToolsProtocol.bound_to(guard)
    return InlineHttpProtocol.bound_to(guard, app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operation", default="Decrypt")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    op, calls, repeats = args.operation, args.calls, args.repeats
    base = Path(tempfile.mkdtemp(prefix="kms-api-layers-"))
    service = KeyService(
        SqliteStore(base / "b.db"), LocalRootOfTrust.create(base / "m.key"), SystemClock()
    )
    tenant = service.create_tenant("bench")
    principal, secret = service.create_access_key(tenant.account_id, "admin", True)
    backend = CachedBackend(service, 5.0)
    app = create_app(backend, offload=True, inline_operations=HOT_OPERATIONS)
    found = backend.lookup_access_key(principal.access_key_id)
    assert found is not None
    caller = replace(found.caller, region="us-east-1", access_key_id=principal.access_key_id)
    key_id = service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
    sealed = service.call(caller, "Encrypt", {"KeyId": key_id, "Plaintext": b"k" * 32})
    blob = sealed["CiphertextBlob"]
    bodies = {
        "Decrypt": {"CiphertextBlob": base64.b64encode(blob).decode()},
        "Encrypt": {"KeyId": key_id, "Plaintext": base64.b64encode(b"k" * 32).decode()},
        "GenerateDataKey": {"KeyId": key_id, "KeySpec": "AES_256"},
    }
    creds = {
        "AccessKeyId": principal.access_key_id,
        "SecretAccessKey": secret,
        "Region": "us-east-1",
    }
    headers, body = presign("https://127.0.0.1:8443", creds, op, bodies[op])
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/"}
    scope |= {"query_string": b"", "headers": raw_headers, "client": ("127.0.0.1", 1)}
    head = read_head(scope)
    signed = SignedRequest("POST", "/", "", head.headers, body)
    # this checkout's ApiHandler, or an older checkout's KmsApi with the same parts
    handler: Any = getattr(app, "handler", app)
    verifier = getattr(handler, "verifier", None) or handler._verifier
    codec = getattr(handler, "codec", None) or handler._codec
    metrics = getattr(handler, "metrics", None) or handler._metrics
    count = getattr(metrics, "observe_soon", metrics.observe)
    parsed = decode_body(body)
    decoded = codec.decode_request(op, parsed)
    response = backend.call(caller, op, decoded, "r")
    service.audit.flush()

    async def asgi_once() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            return None

        await app(dict(scope), receive, send)

    serve_inline = getattr(app, "serve_inline", None)
    inline_args = len(inspect.signature(serve_inline).parameters) if serve_inline else 0

    def app_once() -> None:
        if serve_inline is not None:
            if inline_args == 4:
                serve_inline(raw_headers, body, b"/", "127.0.0.1:1")
            else:  # an older checkout's (headers, body, path, query, client)
                serve_inline(raw_headers, body, b"/", b"", "127.0.0.1:1")
        else:
            loop.run_until_complete(asgi_once())

    def flush_per_event() -> float:
        for _ in range(calls):
            backend.call(caller, op, decoded, "r")
        start = time.thread_time()
        written = service.audit.flush()
        return (time.thread_time() - start) / max(1, written) * 1e6

    import uvicorn
    from uvicorn.server import ServerState

    request_bytes = raw_request(headers, body)
    cls = protocol_class(app)
    config = uvicorn.Config(app, loop="none", http=cls, lifespan="off", log_config=None)
    config.load()
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    protocol = cls(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = _Transport()
    protocol.connection_made(transport)

    async def count_batch() -> None:
        for _ in range(METRICS_BATCH):
            count(op, 200, None, 0.001)
        await asyncio.sleep(0)  # a checkout that counts per loop iteration does it now

    def metrics_per_request() -> None:
        # as the server counts: many requests per event-loop iteration (per call: / batch)
        loop.run_until_complete(count_batch())

    def loop_step() -> None:
        loop.run_until_complete(asyncio.sleep(0))

    def protocol_once() -> None:
        protocol.data_received(request_bytes)
        # let a task-based path answer (uvicorn's cycle), as the loop would; the cost of
        # this step alone is measured too and subtracted
        loop_step()

    rows: dict[str, float] = {}
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("request head", lambda: read_head(scope)),
        ("SigV4", lambda: verifier.verify(signed)),
        ("JSON decode + shapes", lambda: codec.decode_request(op, decode_body(body))),
        ("key service call", lambda: backend.call(caller, op, decoded, "r")),
        ("response shapes + JSON", lambda: encode_body(codec.encode_response(op, response))),
        ("metrics", metrics_per_request),
        ("whole app", app_once),
        ("HTTP protocol + whole app", protocol_once),
        ("(driving the loop one step, subtracted above)", loop_step),
    ]
    for _ in range(2):  # interleave: each part twice, keep the better
        for name, fn in parts:
            fn()
            value = per_call(fn, calls, (repeats + 1) // 2)
            rows[name] = min(rows.get(name, value), value)
            service.audit.flush()
        value = min(flush_per_event() for _ in range(3))
        rows["audit flush per event"] = min(rows.get("audit flush per event", value), value)
    assert transport.writes > 0
    step = rows["(driving the loop one step, subtracted above)"]
    rows["metrics"] = (rows["metrics"] - step) / METRICS_BATCH
    rows["HTTP protocol + whole app"] -= step
    if serve_inline is None:  # the ASGI call ran through the loop too
        rows["whole app"] -= step
    label = "inline" if serve_inline is not None else "ASGI"
    print(f"{op}: µs of CPU per request, in process ({label} path)")
    print("| layer | µs |\n|---|---:|")
    for name, value in rows.items():
        print(f"| {name} | {value:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"operation": op, "path": label, "us": rows}, indent=2))
    service.close()


if __name__ == "__main__":
    main()
