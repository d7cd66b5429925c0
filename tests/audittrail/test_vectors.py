"""``tests/vectors/audit_chain_v2.json``: Strongroom's chain and checkpoints match the spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from strongroom.kms.audit_checkpoint import Checkpoint, CheckpointInvalid, parse_checkpoint_line
from strongroom.ports import AuditRecord
from strongroom.ports.audit_chain import AuditChain, verify_chain

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DATA: dict[str, Any] = json.loads((VECTORS / "audit_chain_v2.json").read_text("utf-8"))
CHAIN = AuditChain(bytes.fromhex(DATA["key"]), DATA["keyedFrom"])


def _records() -> list[AuditRecord]:
    return [
        AuditRecord(e["seq"], *(bytes.fromhex(e[f]) for f in ("body", "prevHash", "hash")))
        for e in DATA["events"]
    ]


def test_the_chain_reproduces_every_hash() -> None:
    for record in _records():
        assert CHAIN.link(record.prev_hash, record.seq, record.body) == record.hash
    assert verify_chain(_records(), chain=CHAIN)[0] == 5


def test_the_checkpoint_is_made_and_read_as_specified() -> None:
    want = DATA["checkpoint"]
    made = Checkpoint(5, bytes.fromhex(want["head"]), DATA["keyedFrom"], 1765000000)
    assert made.signed_line(CHAIN) == want["line"]
    assert parse_checkpoint_line(want["line"], CHAIN) == made
    assert parse_checkpoint_line("2026-12-06 INFO " + want["line"], CHAIN) == made


@pytest.mark.parametrize("case", DATA["invalidCheckpoints"], ids=lambda c: c["name"])
def test_every_altered_checkpoint_is_refused(case: dict[str, str]) -> None:
    with pytest.raises(CheckpointInvalid):
        parse_checkpoint_line(case["line"], CHAIN)


def test_the_vectors_are_current() -> None:
    done = subprocess.run(
        [sys.executable, str(VECTORS / "generate_audit.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
