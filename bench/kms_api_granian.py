"""A candidate HTTP front measured: granian (Rust HTTP and TLS) before the same API code.

``strongroom server`` runs uvicorn's protocol on uvloop with Python's TLS; granian parses
HTTP and terminates TLS (rustls) in Rust and hands each request to Python through its
RSGI interface. This runs both, one worker each, over HTTPS, on the same signed Decrypt
replayed by ``wrk``, alternating rounds, and prints server CPU per request and req/s.
granian here serves ``KmsApi.serve_inline`` with the server's audit flushing; it has no
equivalent of ``server/guard.py`` (per-client caps, eviction, whole-request deadlines),
so it is measured as a candidate, not offered.

    pip install granian && python bench/kms_api_granian.py --rounds 2

Needs ``wrk`` and ``openssl`` (Debian); run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

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

ENV = "STRONGROOM_GRANIAN_BENCH"


class RsgiApp:
    """The KMS API over an existing data directory, as an RSGI application."""

    def __init__(self) -> None:
        from strongroom.api import create_app
        from strongroom.kms import KeyService
        from strongroom.ports import SystemClock
        from strongroom.rootkey import LocalRootOfTrust
        from strongroom.server.runtime import CachedBackend
        from strongroom.server.settings import HOT_OPERATIONS
        from strongroom.store import SqliteStore

        base = Path(os.environ[ENV])
        self.service = KeyService(
            SqliteStore(base / "bench.db"),
            LocalRootOfTrust.load(base / "master.key"),
            SystemClock(),
        )
        self.api = create_app(CachedBackend(self.service, 5.0), inline_operations=HOT_OPERATIONS)
        threading.Thread(target=self._flush, daemon=True).start()

    def _flush(self) -> None:
        while True:
            time.sleep(0.2)
            self.service.audit.flush()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        body = await protocol()
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()]
        url = scope.path.encode() + (
            b"?" + scope.query_string.encode() if scope.query_string else b""
        )
        status, payload, content_type, request_id = self.api.serve_inline(headers, body, url, "")
        protocol.response_bytes(
            status,
            [("content-type", content_type.decode()), ("x-amzn-requestid", request_id)],
            payload,
        )


def app() -> RsgiApp:
    """granian's factory (``--factory bench.kms_api_granian:app``)."""
    return RsgiApp()


def prepare(base: Path) -> tuple[dict[str, str], str]:
    """A data directory with a tenant, an access key and a key; credentials and a blob."""
    import base64

    from strongroom.kms import KeyService
    from strongroom.kms.caller import Caller
    from strongroom.ports import SystemClock
    from strongroom.rootkey import LocalRootOfTrust
    from strongroom.store import SqliteStore

    service = KeyService(
        SqliteStore(base / "bench.db"), LocalRootOfTrust.create(base / "master.key"), SystemClock()
    )
    tenant = service.create_tenant("bench")
    principal, secret = service.create_access_key(tenant.account_id, "admin", True)
    found = service.lookup_access_key(principal.access_key_id)
    assert found is not None
    caller: Caller = found.caller
    key_id = service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
    blob = service.call(caller, "Encrypt", {"KeyId": key_id, "Plaintext": b"k" * 32})
    service.close()
    creds = {
        "AccessKeyId": principal.access_key_id,
        "SecretAccessKey": secret,
        "Region": "us-east-1",
    }
    return creds, base64.b64encode(blob["CiphertextBlob"]).decode("ascii")


def measure(
    pid: int, endpoint: str, headers: dict[str, str], body: bytes, conns: int, seconds: float
) -> dict[str, float]:
    run_wrk(endpoint, headers, body, conns, 1.0)
    pids = process_tree(pid)
    before = process_sched(pids)
    result = run_wrk(endpoint, headers, body, conns, seconds)
    after = process_sched(pids)
    cpu = sum(a.since(b)[0] for a, b in zip(after, before, strict=True))
    return {
        "rps": result["rps"],
        "p99_ms": result["p99_ms"],
        "cpu_us": cpu / result["requests"] * 1e6,
        "non2xx": result["non2xx"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kms-granian-") as tmp:
        base = Path(tmp)
        (base / "g").mkdir()
        creds, blob = prepare(base / "g")
        self_signed_cert(base)
        port = free_port()
        env = dict(os.environ, **{ENV: str(base / "g")})
        granian = subprocess.Popen(
            granian_command(
                "kms_api_granian:app", port, 1, (str(base / "cert.pem"), str(base / "key.pem"))
            ),
            cwd=Path(__file__).resolve().parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            g_end = f"https://127.0.0.1:{port}"
            g_headers, g_body = presign(g_end, creds, "Decrypt", {"CiphertextBlob": blob})
            results: dict[str, list[dict[str, float]]] = {"granian": [], "strongroom": []}
            with strongroom_target(base, "sr", "strongroom", "--workers", "1") as target:
                prepare_bodies(target)
                s_headers, s_body = target.signed("Decrypt")
                for _ in range(args.rounds):
                    results["strongroom"].append(
                        measure(
                            target.root_pid,
                            target.endpoint,
                            s_headers,
                            s_body,
                            args.connections,
                            args.seconds,
                        )
                    )
                    results["granian"].append(
                        measure(
                            granian.pid, g_end, g_headers, g_body, args.connections, args.seconds
                        )
                    )
        finally:
            granian.terminate()
            granian.wait(10)
    for name, runs in results.items():
        cpu = statistics.median(r["cpu_us"] for r in runs)
        rps = statistics.median(r["rps"] for r in runs)
        print(
            f"{name:10s} Decrypt c={args.connections}: {rps:,.0f} req/s, server CPU "
            f"{cpu:.0f} µs/request; runs {json.dumps(runs)}"
        )


if __name__ == "__main__":
    main()
