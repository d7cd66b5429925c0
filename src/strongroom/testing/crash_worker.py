"""A process for crash tests: it works on a data directory until it is killed.

::

    python -m strongroom.testing.crash_worker DATA_DIR ACCESS_KEY_ID ACK_FILE SEED

It opens the key service of ``DATA_DIR`` as the principal ``ACCESS_KEY_ID``, prints
``ready`` on stdout, then loops forever over CreateKey, RotateKeyOnDemand and Encrypt
(random data, random key of its tenant). After each operation *returns*, it appends one
acknowledgement line to ``ACK_FILE`` and makes it durable (flush + fsync)::

    key <key id>
    rotate <key id>
    ct <key id> <base64 ciphertext blob> <hex SHA-256 of the plaintext>

So every complete line names something the service promised to keep. The killer
truncates a torn last line before starting the next worker. :func:`read_acks` parses the
file back into an :class:`Acks` for the checks.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.config import load_config
from strongroom.deployment import open_service

OPERATIONS = ("create", "rotate", "encrypt", "encrypt")
"""The mix of operations, drawn uniformly (encryption twice as often)."""


@dataclass
class Acks:
    """What the workers acknowledged: keys, rotations per key, ciphertexts."""

    keys: list[str] = field(default_factory=list)
    rotations: Counter[str] = field(default_factory=Counter)
    ciphertexts: list[tuple[str, bytes, str]] = field(default_factory=list)


def read_acks(path: Path) -> Acks:
    """Parse complete acknowledgement lines (a torn last line is not acknowledged)."""
    acks = Acks()
    text = path.read_text(encoding="ascii") if path.exists() else ""
    complete = text[: text.rfind("\n") + 1]
    for line in complete.splitlines():
        kind, *rest = line.split(" ")
        if kind == "key":
            acks.keys.append(rest[0])
        elif kind == "rotate":
            acks.rotations[rest[0]] += 1
        elif kind == "ct":
            acks.ciphertexts.append((rest[0], base64.b64decode(rest[1]), rest[2]))
        else:
            raise ValueError(f"unknown acknowledgement {kind!r}")
    return acks


def drop_torn_line(path: Path) -> None:
    """Cut a partly written last line off the acknowledgement file."""
    if not path.exists():
        return
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())


def run(data_dir: Path, access_key_id: str, ack_path: Path, seed: int) -> None:
    """Work until killed (see the module docstring)."""
    config = load_config(data_dir)
    service = open_service(config, data_dir)
    access = service.lookup_access_key(access_key_id)
    if access is None:
        raise SystemExit(f"unknown access key {access_key_id}")
    caller = access.caller
    rng = random.Random(seed)  # noqa: S311 - chooses operations, not secrets
    keys = list(read_acks(ack_path).keys)
    with open(ack_path, "a", encoding="ascii") as ack:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while True:
            op = rng.choice(OPERATIONS) if keys else "create"
            if op == "create":
                meta = service.call(caller, "CreateKey", {"Description": "crash test"})
                key_id = meta["KeyMetadata"]["KeyId"]
                keys.append(key_id)
                line = f"key {key_id}"
            elif op == "rotate":
                key_id = rng.choice(keys)
                service.call(caller, "RotateKeyOnDemand", {"KeyId": key_id})
                line = f"rotate {key_id}"
            else:
                key_id = rng.choice(keys)
                plaintext = os.urandom(rng.randrange(1, 256))
                blob = service.call(caller, "Encrypt", {"KeyId": key_id, "Plaintext": plaintext})
                encoded = base64.b64encode(blob["CiphertextBlob"]).decode("ascii")
                line = f"ct {key_id} {encoded} {hashlib.sha256(plaintext).hexdigest()}"
            ack.write(line + "\n")
            ack.flush()
            os.fsync(ack.fileno())


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``DATA_DIR ACCESS_KEY_ID ACK_FILE SEED``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        raise SystemExit(__doc__)
    run(Path(args[0]), args[1], Path(args[2]), int(args[3]))


if __name__ == "__main__":
    main()
