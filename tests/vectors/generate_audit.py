"""Regenerate ``audit_chain_v2.json``: the keyed audit chain and its signed checkpoints.

    python tests/vectors/generate_audit.py          # rewrite the file
    python tests/vectors/generate_audit.py --check  # exit 1 if it differs

Written from the byte-level spec in docs/formats.md with ``cryptography``'s HMAC only
(not Strongroom's code): ``hash(n) = HMAC-SHA256(K, "strongroom/audit/v2" || u64(n) ||
hash(n-1) || body)`` for keyed events, ``SHA-256("strongroom/audit/v1" || ...)`` for the
unkeyed prefix before ``keyedFrom``; a checkpoint's MAC is ``HMAC-SHA256(K,
"strongroom/audit-checkpoint/v1" || canonical JSON of its fields)``.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac

HERE = Path(__file__).resolve().parent
NAME = "audit_chain_v2.json"


def fixed(label: str, size: int) -> bytes:
    return hashlib.sha256(f"strongroom vectors/{label}".encode()).digest()[:size]


def mac(key: bytes, message: bytes) -> bytes:
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(message)
    return h.finalize()


def link(key: bytes, keyed_from: int, prev: bytes, seq: int, body: bytes) -> bytes:
    if seq < keyed_from:
        unkeyed = b"strongroom/audit/v1" + struct.pack(">Q", seq) + prev + body
        return hashlib.sha256(unkeyed).digest()
    return mac(key, b"strongroom/audit/v2" + struct.pack(">Q", seq) + prev + body)


def checkpoint_line(key: bytes, seq: int, head: bytes, keyed_from: int, time: int) -> str:
    fields = {"head": head.hex(), "keyedFrom": keyed_from, "seq": seq, "time": time, "v": 1}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    tag = mac(key, b"strongroom/audit-checkpoint/v1" + canonical)
    return json.dumps(
        {"auditCheckpoint": fields, "mac": tag.hex()}, sort_keys=True, separators=(",", ":")
    )


def build() -> dict[str, Any]:
    key = fixed("audit key", 32)
    keyed_from = 3
    events, prev = [], bytes(32)
    for seq in range(1, 6):
        body = json.dumps({"n": seq, "operation": "Decrypt"}, separators=(",", ":")).encode()
        digest = link(key, keyed_from, prev, seq, body)
        events.append(
            {"seq": seq, "body": body.hex(), "prevHash": prev.hex(), "hash": digest.hex()}
        )
        prev = digest
    good = checkpoint_line(key, 5, prev, keyed_from, 1765000000)
    document = json.loads(good)
    invalid = []
    for name, change in (
        ("seq moved back", ("seq", 4)),
        ("head changed", ("head", "00" * 32)),
        ("keyedFrom moved", ("keyedFrom", 6)),
    ):
        bad = json.loads(good)
        bad["auditCheckpoint"][change[0]] = change[1]
        invalid.append({"name": name, "line": json.dumps(bad, sort_keys=True)})
    other = checkpoint_line(fixed("another key", 32), 5, prev, keyed_from, 1765000000)
    invalid.append({"name": "signed with another store's key", "line": other})
    return {
        "format": "strongroom audit chain v2 (keyed) and checkpoint v1",
        "key": key.hex(),
        "keyedFrom": keyed_from,
        "events": events,
        "checkpoint": {"line": good, "seq": 5, "head": prev.hex(), "mac": document["mac"]},
        "invalidCheckpoints": invalid,
    }


def main(argv: list[str]) -> int:
    text = json.dumps(build(), indent=2, ensure_ascii=True) + "\n"
    path = HERE / NAME
    if "--check" in argv:
        if not path.exists() or path.read_text("utf-8") != text:
            print(f"out of date: {NAME}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
