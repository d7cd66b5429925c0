"""Regenerate the volume test vectors: the LUKS2 token (versions 1 and 2), the Clevis pin JWE.

    python tests/vectors/generate_volume.py          # rewrite both files
    python tests/vectors/generate_volume.py --check  # exit 1 if a file differs

Keys and IVs derive from fixed labels, so the output only changes with the formats. Each
JWE is built twice: by ``strongroom.volume.jwe.seal`` and here from RFC 7516 with only
``cryptography`` (AES-256-GCM, AAD = ASCII(BASE64URL(protected header))); they must agree.
Likewise each version-2 token check: by ``strongroom.volume.token.keyslot_check`` and here
from docs/formats.md with ``cryptography``'s HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC

from strongroom.volume.jwe import PinHeader, seal
from strongroom.volume.token import VolumeToken, keyslot_check, passphrase_of

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


def spec_check(passphrase: bytes, volume: str, keyslot: int, salt: str) -> bytes:
    """The version-2 check as docs/formats.md defines it, with ``cryptography``'s HMAC."""
    mac = HMAC(passphrase, hashes.SHA256())
    mac.update(b"strongroom volume token check v2\x00" + volume.lower().encode())
    mac.update(b"\x00" + str(keyslot).encode() + b"\x00" + salt.encode())
    check = mac.finalize()
    assert check == keyslot_check(passphrase, volume, keyslot, salt)
    return check


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
            {
                "name": "unknown version",
                "token": variant(version=3),
                "error": "version 3 is not 1 or 2",
            },
            {
                "name": "version 1 with a check",
                "token": variant(check=base64.b64encode(bytes(32)).decode()),
                "error": "unknown members",
            },
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


def token_v2_vectors() -> dict[str, Any]:
    context = {"strongroom:tenant": "111122223333", "strongroom:volume": UUID, "pvc": "db-0"}
    valid: list[dict[str, Any]] = []
    mismatches: list[dict[str, Any]] = []
    for name, keyslot, volume in (
        ("keyslot 1, extra context", 1, UUID),
        ("keyslot 31, upper-case UUID in the context", 31, UUID.upper()),
    ):
        data_key = fixed(f"volume v2 data key/{name}", 32)
        passphrase = passphrase_of(data_key)
        salt = base64.b64encode(fixed(f"volume v2 keyslot salt/{name}", 32)).decode()
        check = spec_check(passphrase, volume, keyslot, salt)
        ctx = {**context, "strongroom:volume": volume}
        token = VolumeToken(keyslot, ARN, fixed(f"volume v2 wrapped key/{name}", 184), ctx)
        obj = token.with_check(passphrase, salt).to_json()
        assert obj["check"] == base64.b64encode(check).decode()
        valid.append(
            {
                "name": name,
                "token": obj,
                "data_key": data_key.hex(),
                "passphrase": passphrase.decode(),
                "keyslot": keyslot,
                "keyslot_salt": salt,
                "check": check.hex(),
            }
        )
    first = valid[0]
    passphrase, salt = first["passphrase"].encode(), first["keyslot_salt"]
    for name, other in (
        ("check made for keyslot 2", spec_check(passphrase, UUID, 2, salt)),
        ("check made for another volume", spec_check(passphrase, UUID[:-1] + "b", 1, salt)),
        ("check of another passphrase", spec_check(passphrase[:-1] + b"A", UUID, 1, salt)),
        ("check made for another keyslot salt", spec_check(passphrase, UUID, 1, salt[1:])),
    ):
        altered = {**first["token"], "check": base64.b64encode(other).decode()}
        mismatches.append(
            {
                "name": name,
                "token": altered,
                "passphrase": first["passphrase"],
                "keyslot_salt": salt,
            }
        )
    base = first["token"]

    def variant(**changes: Any) -> dict[str, Any]:
        out = {**base, **changes}
        return {k: v for k, v in out.items() if v is not None}

    return {
        "format": "Strongroom volume token, version 2 (LUKS2 token of type strongroom)",
        "spec": "docs/formats.md, section 'Volume token, version 2'",
        "valid": valid,
        "mismatches": mismatches,
        "invalid": [
            {"name": "no check", "token": variant(check=None), "error": "check"},
            {
                "name": "check of 31 bytes",
                "token": variant(check=base64.b64encode(bytes(31)).decode()),
                "error": "check",
            },
            {"name": "check not base64", "token": variant(check="@" * 44), "error": "check"},
            {"name": "check not a string", "token": variant(check=32), "error": "check"},
            {"name": "unknown member", "token": variant(extra="x"), "error": "unknown"},
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
        ("volume_token_v2.json", token_v2_vectors()),
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
