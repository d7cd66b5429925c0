"""Regenerate ``row_mac_v1.json``: sealed store rows, grant token keys, object index entries.

    python tests/vectors/generate_row_mac.py          # rewrite the file
    python tests/vectors/generate_row_mac.py --check  # exit 1 if it would change

Each value is computed here from the byte-level spec in docs/formats.md with
``cryptography`` and ``hmac`` only, and checked against Strongroom's own code
(``StoreSecrets``) while it is written. Keys come from fixed labels, so the output only
changes if the format does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.ports.row_mac import StoreSecrets

HERE = Path(__file__).resolve().parent
OUT = HERE / "row_mac_v1.json"


def fixed(label: str, size: int = 32) -> bytes:
    """``size`` stable, arbitrary bytes from ``label``."""
    return hashlib.sha256(label.encode()).digest()[:size]


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def hkdf(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def spec_seal(k_rows: bytes, identity: list[str], value: bytes) -> bytes:
    message = b"strongroom/row/v1" + b"".join(lp(p.encode()) for p in identity) + value
    return b"\x01" + hmac.digest(k_rows, message, "sha256") + value


def build() -> dict[str, Any]:
    master = fixed("row mac vector master key")
    k_rows = hkdf(master, b"strongroom/store-mac/v1/rows")
    k_tokens = hkdf(master, b"strongroom/store-mac/v1/secret/grant-token")
    key_id = hkdf(master, b"strongroom/store-mac/v1/id")[:8].hex()
    secrets = StoreSecrets(master)
    assert secrets.key_id == key_id and secrets.purpose_key("grant-token") == k_tokens
    rows = [
        (
            ["111122223333", "key", "1234abcd-12ab-34cd-56ef-1234567890ab"],
            b'{"key_state":"Enabled"}',
        ),
        (["111122223333", "principal", "AKIAEXAMPLE"], b'{"is_admin":false}'),
        (["_global", "accesskey", "AKIAEXAMPLE"], b"111122223333"),
        (["111122223333", "alias", "eu-west-1/alias/\u00e9t\u00e9"], b""),
        (["111122223333", "key", "1234abcd-12ab-34cd-56ef-1234567890ab", "eu-west-1"], b"{}"),
    ]
    valid = []
    for identity, value in rows:
        sealed = spec_seal(k_rows, identity, value)
        assert secrets.seal(identity, value) == sealed
        assert secrets.open(identity, sealed) == value
        valid.append({"identity": identity, "value": value.hex(), "sealed": sealed.hex()})
    identity, value = rows[0]
    good = spec_seal(k_rows, identity, value)
    flipped = bytearray(good)
    flipped[5] ^= 1
    edited = good[:33] + value.replace(b"Enabled", b"Disabled")
    invalid = [
        {"why": "tag changed", "identity": identity, "sealed": bytes(flipped).hex()},
        {"why": "value edited, tag kept", "identity": identity, "sealed": edited.hex()},
        {"why": "another row's identity", "identity": rows[1][0], "sealed": good.hex()},
        {"why": "unsealed (earlier format)", "identity": identity, "sealed": value.hex()},
        {"why": "unknown version", "identity": identity, "sealed": ("02" + good[1:].hex())},
        {"why": "shorter than a tag", "identity": identity, "sealed": good[:32].hex()},
    ]
    ids = (b"111122223333", b"1234abcd-12ab-34cd-56ef-1234567890ab", b"a" * 64)
    grant_key = hmac.digest(k_tokens, b"".join(lp(p) for p in ids), "sha256")
    entry_current = b"\x01" + json.dumps({"ok": ["00" * 16]}, separators=(",", ":")).encode()
    entry_in_flight = b"\x01" + json.dumps({"ok": ["-", "11" * 16]}, separators=(",", ":")).encode()
    return {
        "format": "sealed store rows, version 1 (docs/formats.md)",
        "master_key": master.hex(),
        "k_rows": k_rows.hex(),
        "key_id": key_id,
        "valid": valid,
        "invalid": invalid,
        "grant_token_key": {
            "k_tokens": k_tokens.hex(),
            "account": ids[0].decode(),
            "key_id": ids[1].decode(),
            "grant_id": ids[2].decode(),
            "k_grant": grant_key.hex(),
        },
        "object_index_entries": [entry_current.hex(), entry_in_flight.hex()],
    }


def main() -> None:
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv:
        sys.exit(0 if OUT.exists() and OUT.read_text("utf-8") == text else 1)
    OUT.write_text(text, "utf-8")


if __name__ == "__main__":
    main()
