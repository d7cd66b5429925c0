"""Signed checkpoints of the audit chain's head, kept outside the database.

A checkpoint says "event ``seq`` of this store's chain has hash ``head``", signed with the
audit key (HMAC-SHA256 over ``"strongroom/audit-checkpoint/v1" || canonical JSON``), so
nobody without the key can forge or advance one. One JSON object, one line::

    {"auditCheckpoint":{"head":"<64 hex>","keyedFrom":1,"seq":1234,"time":1765000000,"v":1},
     "mac":"<64 hex>"}

The same line goes to the checkpoint file beside the store and to the log (so a log
shipper keeps every one). Checking the chain against the newest checkpoint finds a tail
cut off, and any rewrite that changed the hash of the checkpointed event.

:class:`CheckpointSink` is where the audit log sends them; ``strongroom.audittrail``
holds the one that writes the file and the log line.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any, Protocol

from strongroom.ports.audit_chain import HASH_BYTES, AuditChain

CHECKPOINT_VERSION = 1
CHECKPOINT_FIELD = "auditCheckpoint"
_LABEL = b"strongroom/audit-checkpoint/v1"


class CheckpointInvalid(ValueError):
    """A checkpoint that does not parse, or whose MAC does not match this store's audit key."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Event ``seq`` of the chain has hash ``head``; ``keyed_from``: its first keyed event."""

    seq: int
    head: bytes
    keyed_from: int
    time: int

    def _fields(self) -> dict[str, Any]:
        return {
            "head": self.head.hex(),
            "keyedFrom": self.keyed_from,
            "seq": self.seq,
            "time": self.time,
            "v": CHECKPOINT_VERSION,
        }

    def signed_line(self, chain: AuditChain) -> str:
        """The checkpoint as one signed JSON line (no newline)."""
        fields = self._fields()
        mac = chain.mac(_LABEL, _canonical(fields))
        return json.dumps(
            {CHECKPOINT_FIELD: fields, "mac": mac.hex()}, sort_keys=True, separators=(",", ":")
        )


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("ascii")


def _int(fields: dict[str, Any], name: str) -> int:
    value = fields.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointInvalid(f"field {name} is not a whole number")
    return value


def parse_checkpoint(document: Any, chain: AuditChain) -> Checkpoint:
    """The checkpoint in a parsed JSON document, its MAC checked with ``chain``'s key."""
    if not isinstance(document, dict) or not isinstance(document.get(CHECKPOINT_FIELD), dict):
        raise CheckpointInvalid("not an audit checkpoint")
    fields: dict[str, Any] = document[CHECKPOINT_FIELD]
    if fields.get("v") != CHECKPOINT_VERSION:
        raise CheckpointInvalid(f"unknown checkpoint version {fields.get('v')!r}")
    if set(fields) != {"head", "keyedFrom", "seq", "time", "v"}:
        raise CheckpointInvalid("unexpected fields")
    mac_hex = document.get("mac")
    try:
        head = bytes.fromhex(str(fields["head"]))
        mac = bytes.fromhex(str(mac_hex))
    except ValueError as exc:
        raise CheckpointInvalid("head or mac is not hex") from exc
    if len(head) != HASH_BYTES:
        raise CheckpointInvalid("head is not 32 bytes")
    if not chain.keyed:
        raise CheckpointInvalid("this store's chain has no audit key to check it with")
    checkpoint = Checkpoint(
        _int(fields, "seq"), head, _int(fields, "keyedFrom"), _int(fields, "time")
    )
    expected = chain.mac(_LABEL, _canonical(checkpoint._fields()))
    if not hmac.compare_digest(expected, mac):
        raise CheckpointInvalid("its MAC does not match this store's audit key (forged or foreign)")
    if checkpoint.keyed_from != chain.keyed_from:
        raise CheckpointInvalid("it names another first keyed event than the store's audit key")
    return checkpoint


def parse_checkpoint_line(line: str, chain: AuditChain) -> Checkpoint:
    """The checkpoint in one line of a checkpoint file or a log (text before ``{`` ignored)."""
    start = line.find("{")
    if start < 0:
        raise CheckpointInvalid("no JSON object on the line")
    try:
        document = json.loads(line[start:])
    except ValueError as exc:
        raise CheckpointInvalid("not JSON") from exc
    return parse_checkpoint(document, chain)


class CheckpointSink(Protocol):
    """Where checkpoints go, and where the newest one is read back (a file, a log)."""

    def newest(self) -> Checkpoint | None:
        """The newest valid checkpoint kept (``None`` if there is none)."""
        ...

    def publish(self, checkpoint: Checkpoint) -> object:
        """Keep ``checkpoint`` if it is newer than the newest kept; never go backwards."""
        ...
