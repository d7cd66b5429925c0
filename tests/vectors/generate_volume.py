"""Regenerate the volume test vectors: the LUKS2 token and the Clevis pin JWE, version 1.

    python tests/vectors/generate_volume.py          # rewrite both files
    python tests/vectors/generate_volume.py --check  # exit 1 if a file differs

Keys and IVs derive from fixed labels, so the output only changes with the formats. Each
JWE is built twice: by ``strongroom.volume.jwe.seal`` and here from RFC 7516 with only
``cryptography`` (AES-256-GCM, AAD = ASCII(BASE64URL(protected header))); they must agree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.volume.jwe import PinHeader, seal
from strongroom.volume.token import VolumeToken, passphrase_of

HERE = Path(__file__).resolve().parent
ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
UUID = "6f0c4b52-3d2a-4b7e-9a51-0d6a6c1e2f3a"


def fixed(label: str, size: int) -> bytes:
    """``size`` bytes derived from ``label``: stable and arbitrary."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"strongroom vectors/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_vectors() -> dict[str, Any]:
    context = {"strongroom:tenant": "111122223333", "strongroom:volume": UUID, "pvc": "db-0"}
    data_key = fixed("volume data key", 32)
    token = VolumeToken(1, ARN, fixed("volume wrapped key", 184), context)
    valid = token.to_json()
    assert passphrase_of(data_key) == b64url(data_key).encode()

    def variant(**changes: Any) -> dict[str, Any]:
        out = dict(valid)
        out.update(changes)
        return {k: v for k, v in out.items() if v is not None}

    return {
        "format": "Strongroom volume token (LUKS2 token of type strongroom)",
        "spec": "docs/formats.md, section 'Volume token, version 1'",
        "valid": [
            {
                "name": "keyslot 1, extra context",
                "token": valid,
                "data_key": data_key.hex(),
                "passphrase": passphrase_of(data_key).decode(),
                "keyslot": 1,
            }
        ],
        "invalid": [
            {"name": "unknown version", "token": variant(version=2), "error": "version 2 is not 1"},
            {"name": "boolean version", "token": variant(version=True), "error": "version"},
            {"name": "other type", "token": variant(type="clevis"), "error": "type"},
            {"name": "two keyslots", "token": variant(keyslots=["1", "2"]), "error": "keyslot"},
            {"name": "keyslot 32", "token": variant(keyslots=["32"]), "error": "keyslot"},
            {"name": "alias, not ARN", "token": variant(key_id="alias/x"), "error": "ARN"},
            {"name": "not base64", "token": variant(wrapped_key="@@@@"), "error": "base64"},
            {"name": "unknown member", "token": variant(extra="x"), "error": "unknown"},
            {
                "name": "no volume in context",
                "token": variant(context={"strongroom:tenant": "111122223333"}),
                "error": "strongroom:volume",
            },
            {
                "name": "tenant not the key's account",
                "token": variant(context={**context, "strongroom:tenant": "444455556666"}),
                "error": "another tenant",
            },
        ],
    }


def spec_jwe(header: bytes, key: bytes, iv: bytes, plaintext: bytes) -> str:
    protected = b64url(header)
    sealed = AESGCM(key).encrypt(iv, plaintext, protected.encode("ascii"))
    return ".".join([protected, "", b64url(iv), b64url(sealed[:-16]), b64url(sealed[-16:])])


def jwe_vectors() -> dict[str, Any]:
    valid = []
    for name, plaintext, extra in (
        ("clevis luks passphrase", b"k8vT-2wQ9pL0sXcR4mNzA1bY7eUhJ3dFgK6iO5", {}),
        ("binary secret, endpoint and CA", bytes(range(256)), {"endpoint": "https://kms:8443"}),
        ("empty secret", b"", {"region": "eu-west-1", "ca_bundle": "/etc/strongroom/ca.pem"}),
    ):
        key, iv = fixed(f"pin key/{name}", 32), fixed(f"pin iv/{name}", 12)
        pin = PinHeader(ARN, fixed(f"pin blob/{name}", 184), {"strongroom:pin": "clevis"}, **extra)
        jwe = seal(pin, key, plaintext, iv)
        header = json.dumps(
            {
                "alg": "dir",
                "enc": "A256GCM",
                "clevis": {"pin": "strongroom", "strongroom": pin.to_json()},
            },
            separators=(",", ":"),
        ).encode()
        assert jwe == spec_jwe(header, key, iv, plaintext), name
        valid.append(
            {
                "name": name,
                "data_key": key.hex(),
                "iv": iv.hex(),
                "plaintext": plaintext.hex(),
                "protected_header": header.decode(),
                "jwe": jwe,
            }
        )
    base = valid[0]["jwe"].split(".")
    other_pin = dict(json.loads(valid[0]["protected_header"]))
    other_pin["clevis"] = {"pin": "tang", "tang": {}}
    tang_header = b64url(json.dumps(other_pin, separators=(",", ":")).encode())
    return {
        "format": "Strongroom Clevis pin JWE (compact serialisation, alg dir, enc A256GCM)",
        "spec": "docs/formats.md, section 'Clevis pin JWE, version 1'",
        "valid": valid,
        "invalid": [
            {"name": "four parts", "jwe": ".".join(base[:4]), "data_key": valid[0]["data_key"]},
            {
                "name": "tag flipped",
                "jwe": ".".join([*base[:4], b64url(bytes(16))]),
                "data_key": valid[0]["data_key"],
            },
            {
                "name": "encrypted key present",
                "jwe": ".".join([base[0], "AAAA", *base[2:]]),
                "data_key": valid[0]["data_key"],
            },
            {
                "name": "tang pin",
                "jwe": ".".join([tang_header, *base[1:]]),
                "data_key": valid[0]["data_key"],
            },
            {"name": "wrong key", "jwe": valid[0]["jwe"], "data_key": "00" * 32},
        ],
    }


def main() -> int:
    check = "--check" in sys.argv[1:]
    status = 0
    for name, content in (
        ("volume_token_v1.json", token_vectors()),
        ("clevis_pin_v1.json", jwe_vectors()),
    ):
        text = json.dumps(content, indent=1) + "\n"
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                print(f"{name} differs from what generate_volume.py writes")
                status = 1
        else:
            path.write_text(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
