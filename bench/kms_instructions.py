"""Instructions per KMS request in process, counted by valgrind: steady on a busy machine.

Timings on a machine shared with other work swing by 10-20% between runs of the same code;
instruction counts do not. For Encrypt, Decrypt and GenerateDataKey this runs, under
``valgrind --tool=callgrind``, a child that serves ``--requests`` signed requests through
the whole app (``KmsApi.inline_head`` and ``serve_head``: head, SigV4, JSON, key service,
encoding, metrics) and then through ``KeyService.call`` alone, after 300 of warm-up. Only
the measured loop is counted: it runs under ``functools.reduce`` and callgrind collects
inside that function only (``--toggle-collect=functools_reduce``). The audit flush is
not in the counts (``bench/kms_core.py`` times it), and key records stay cached for the
whole count (``RECORD_TTL_S``: the steady state a server's background re-read keeps).
With ``--compare PYTHON`` another checkout's interpreter runs the same child (this file)
beside this one. The section "Instructions per
KMS request (bench/kms_instructions.py)" of ``docs/benchmarks.md`` is replaced unless
``--no-write``. Needs Debian's ``valgrind``; about two minutes per cell.

    python bench/kms_instructions.py --no-write
    python bench/kms_instructions.py --compare /path/to/other/.venv/bin/python
"""

from __future__ import annotations

import argparse
import base64
import functools
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import bench_doc

HERE = Path(__file__).resolve().parent
SECTION = "## Instructions per KMS request (bench/kms_instructions.py)"
OPERATIONS = ("Encrypt", "Decrypt", "GenerateDataKey")
LAYERS = ("app", "core")
_COLLECTED = re.compile(r"Collected : (\d+)")
RECORD_TTL_S = 3600.0


def child(layer: str, operation: str, requests: int) -> None:
    """Serve ``requests`` requests of ``operation`` through ``layer`` (under valgrind)."""
    sys.path.insert(0, str(HERE))
    from loadgen import presign

    from strongroom.api import create_app
    from strongroom.kms import KeyService
    from strongroom.ports import SystemClock
    from strongroom.rootkey import LocalRootOfTrust
    from strongroom.server.runtime import CachedBackend
    from strongroom.server.settings import HOT_OPERATIONS
    from strongroom.store import SqliteStore

    base = Path(tempfile.mkdtemp(prefix="kms-instructions-"))
    root = LocalRootOfTrust.create(base / "m.key")
    # Under valgrind a request takes ~50x its time: with the default 1 s record TTL the
    # background re-read often came too late and a few requests in each thousand took the
    # general path, moving the counts by 1-2k per request from run to run. A server keeps
    # its records fresh in the background; an hour here counts that steady state.
    service = KeyService(
        SqliteStore(base / "b.db"), root, SystemClock(), key_record_ttl_s=RECORD_TTL_S
    )
    tenant = service.create_tenant("bench")
    principal, secret = service.create_access_key(tenant.account_id, "admin", True)
    backend = CachedBackend(service, 3600.0)
    app = create_app(backend, offload=True, inline_operations=HOT_OPERATIONS)
    found = backend.lookup_access_key(principal.access_key_id)
    assert found is not None
    caller = replace(found.caller, region="us-east-1", access_key_id=principal.access_key_id)
    key_id = service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
    plain = b"k" * 32
    blob = service.call(caller, "Encrypt", {"KeyId": key_id, "Plaintext": plain})["CiphertextBlob"]
    core = {
        "Encrypt": {"KeyId": key_id, "Plaintext": plain},
        "Decrypt": {"CiphertextBlob": blob},
        "GenerateDataKey": {"KeyId": key_id, "KeySpec": "AES_256"},
    }[operation]
    wire = {
        name: base64.b64encode(v).decode() if isinstance(v, bytes) else v
        for name, v in core.items()
    }
    creds = {
        "AccessKeyId": principal.access_key_id,
        "SecretAccessKey": secret,
        "Region": "us-east-1",
    }
    headers, body = presign("https://127.0.0.1:8443", creds, operation, wire)
    raw = [(k.lower(), v) for k, v in headers.items()]
    raw.append(("content-length", str(len(body))))

    def once(_: object = None, __: object = None) -> None:
        if layer == "app":
            # the head as the server's protocol reads it (text, values by name)
            pairs: list[tuple[str, str]] = []
            by_name: dict[str, list[str]] = {}
            for name, value in raw:
                pairs.append((name, value))
                by_name.setdefault(name, []).append(value)
            head = app.inline_head(pairs, by_name)
            assert head is not None
            assert app.serve_head(head, body, b"/", "127.0.0.1:1")[0] == 200
        else:
            service.call(caller, operation, core)

    for _ in range(300):
        once()
    service.audit.flush()
    functools.reduce(once, range(requests), None)  # the only part callgrind counts
    service.audit.close()


def count(python: str, layer: str, operation: str, requests: int) -> float:
    """Instructions per request of ``layer`` and ``operation`` run by ``python``."""
    # --trace-children: ``python`` may be a wrapper script that execs the interpreter
    command = ["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce"]
    command.append("--trace-children=yes")
    command += ["--callgrind-out-file=/dev/null", python, str(Path(__file__).resolve())]
    command += ["--child", layer, operation, str(requests)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = [int(n) for n in _COLLECTED.findall(done.stderr)]
    if done.returncode != 0 or not found:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    return max(found) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="PYTHON", help="another checkout's interpreter")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--doc", type=Path, default=bench_doc.DOC)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        layer, operation, requests = args.child
        child(layer, operation, int(requests))
        return
    sides = [("other", args.compare)] if args.compare else []
    sides.append(("this", sys.executable))
    rows = []
    for operation in OPERATIONS:
        for layer in LAYERS:
            cells = [count(python, layer, operation, args.requests) for _, python in sides]
            rows.append((operation, layer, cells))
            print(operation, layer, " ".join(f"{c:,.0f}" for c in cells), flush=True)
    what = {"app": "whole app (head, SigV4, JSON, key service, metrics)", "core": "KeyService.call"}
    lines = [
        SECTION,
        f"Command: `python bench/kms_instructions.py {shlex.join(sys.argv[1:])}`. "
        f"Machine: {bench_doc.machine()}; load average {bench_doc.load_average()} "
        "(instruction counts do not depend on it).",
        "",
        f"Instructions per request, {args.requests:,} requests after 300 of warm-up, the audit "
        "flush not included" + (f"; other = `{args.compare}`" if args.compare else "") + ".",
        "",
        "| operation | layer | " + " | ".join(name for name, _ in sides) + " |",
        "|---|---|" + "---:|" * len(sides),
    ]
    for operation, layer, cells in rows:
        values = " | ".join(f"{c:,.0f}" for c in cells)
        lines.append(f"| {operation} | {what[layer]} | {values} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_write:
        bench_doc.write_section(section, SECTION, args.doc)


if __name__ == "__main__":
    main()
