"""Regenerate the format test vectors in this directory, deterministically.

    python tests/vectors/generate.py          # rewrite blob_v1.json, wrap_v1.json, context_v1.json
    python tests/vectors/generate.py --check  # exit 1 if a file differs from what it would write

Every key, salt and nonce is derived from a fixed label (SHA-256 of it), so the output never
changes unless the formats do. Each valid vector is made twice: once by Strongroom's own
code (``seal_with``, ``wrap_key_with``, ``encode_context``) and once here from the byte-level
spec in docs/formats.md using only ``cryptography``; the two must agree, and the vector
records the intermediate values (message key, associated data) for other implementations.
Invalid vectors are bytes that must be refused.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from strongroom.crypto.blob import BlobHeader, BlobKind, seal_with
from strongroom.crypto.context import encode_context
from strongroom.crypto.wrap import key_identity, wrap_key_with

HERE = Path(__file__).resolve().parent
TENANT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def fixed(label: str, size: int) -> bytes:
    """``size`` bytes derived from ``label`` (SHA-256 counter mode): stable and arbitrary."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"strongroom vectors/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


# -- the spec, written out independently of strongroom.crypto ----------------------------------


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def spec_context(context: dict[str, str] | None) -> bytes:
    pairs = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in (context or {}).items())
    out = u32(len(pairs))
    for key, value in pairs:
        out += u32(len(key)) + key + u32(len(value)) + value
    return out


def spec_header(key_id: str, version: int, user_id: str | None) -> bytes:
    kid = key_id.encode("ascii")
    out = bytes([1, 1 if user_id is None else 2, len(kid)]) + kid + u32(version)
    if user_id is not None:
        user = user_id.encode("utf-8")
        out += struct.pack(">H", len(user)) + user
    return out


def spec_blob_parts(
    material: bytes,
    tenant: str,
    header: bytes,
    plaintext: bytes,
    context: dict[str, str] | None,
    salt: bytes,
    nonce: bytes,
) -> tuple[bytes, bytes, bytes]:
    """Return ``(message key, associated data, blob)`` as docs/formats.md defines them."""
    label = b"strongroom/blob/v1"
    message_key = HKDFExpand(hashes.SHA256(), 32, label + salt).derive(material)
    tenant_bytes = tenant.encode("utf-8")
    aad = label + u32(len(tenant_bytes)) + tenant_bytes + header + spec_context(context)
    blob = header + salt + nonce + AESGCM(message_key).encrypt(nonce, plaintext, aad)
    return message_key, aad, blob


def spec_identity(parts: list[str | int]) -> bytes:
    out = b""
    for part in parts:
        raw = str(part).encode("utf-8")
        out += u32(len(raw)) + raw
    return out


# -- blob ---------------------------------------------------------------------------------------


def blob_case(
    name: str,
    *,
    plaintext: bytes,
    context: dict[str, str] | None = None,
    key_id: str = KEY_ID,
    version: int = 1,
    user_id: str | None = None,
    tenant: str = TENANT,
    seed: str | None = None,
) -> dict[str, Any]:
    seed = seed or name
    material = fixed(f"blob/material/{seed}", 32)
    salt = fixed(f"blob/salt/{seed}", 16)
    nonce = fixed(f"blob/nonce/{seed}", 12)
    kind = BlobKind.KEY if user_id is None else BlobKind.USER_KEY
    header = BlobHeader(key_id, version, kind, user_id)
    ours = seal_with(material, tenant, header, plaintext, context, salt, nonce)
    head = spec_header(key_id, version, user_id)
    message_key, aad, theirs = spec_blob_parts(
        material, tenant, head, plaintext, context, salt, nonce
    )
    if ours != theirs or header.encode() != head:
        raise SystemExit(f"blob vector {name!r}: the code and the spec disagree")
    return {
        "name": name,
        "material": material.hex(),
        "tenant": tenant,
        "key_id": key_id,
        "key_version": version,
        "kind": int(kind),
        "user_id": user_id,
        "context": context,
        "plaintext": plaintext.hex(),
        "salt": salt.hex(),
        "nonce": nonce.hex(),
        "header": head.hex(),
        "encoded_context": spec_context(context).hex(),
        "aad": aad.hex(),
        "message_key": message_key.hex(),
        "blob": ours.hex(),
    }


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]


def blob_vectors() -> dict[str, Any]:
    valid = [
        blob_case("one byte, no context", plaintext=b"\x00"),
        blob_case("empty plaintext (the format allows it, Encrypt does not)", plaintext=b""),
        blob_case(
            "context sorted by UTF-8 bytes of the keys",
            plaintext=b"attack at dawn",
            context={"zeta": "last", "Alpha": "upper first", "\u00e9t\u00e9": "two bytes", "": ""},
        ),
        blob_case("context ab=c", plaintext=b"same", context={"ab": "c"}, seed="ambiguity"),
        blob_case("context a=bc", plaintext=b"same", context={"a": "bc"}, seed="ambiguity"),
        blob_case(
            "empty context encodes like none", plaintext=b"same", context={}, seed="ambiguity"
        ),
        blob_case(
            "longest key id, largest version",
            plaintext=fixed("blob/plaintext/long", 100),
            key_id="f" * 64,
            version=0xFFFFFFFF,
        ),
        blob_case(
            "4 KiB plaintext, version 7", plaintext=fixed("blob/plaintext/4k", 4096), version=7
        ),
        blob_case(
            "user key blob",
            plaintext=b"user data",
            user_id="user-\u00e9-42",
            context={"app": "crm"},
            version=3,
        ),
    ]
    base = valid[2]
    blob = bytes.fromhex(base["blob"])
    header_len = len(bytes.fromhex(base["header"]))

    def invalid(name: str, data: bytes, **changes: Any) -> dict[str, Any]:
        case = {
            "name": name,
            "material": base["material"],
            "tenant": base["tenant"],
            "context": base["context"],
            "blob": data.hex(),
        }
        case.update(changes)
        return case

    user = valid[-1]
    user_blob = bytes.fromhex(user["blob"])
    user_len_at = 3 + len(KEY_ID) + 4  # version, kind, id length, key id, key version
    invalids = [
        invalid("another tenant", blob, tenant="444455556666"),
        invalid("no context", blob, context=None),
        invalid("one context value changed", blob, context={**base["context"], "zeta": "LAST"}),
        invalid("one context pair more", blob, context={**base["context"], "x": "y"}),
        invalid("another key's material", blob, material=fixed("blob/material/other", 32).hex()),
        invalid("last tag bit flipped", flip(blob, len(blob) - 1, 7)),
        invalid("ciphertext bit flipped", flip(blob, header_len + 28)),
        invalid("salt bit flipped", flip(blob, header_len)),
        invalid("nonce bit flipped", flip(blob, header_len + 16)),
        invalid("key id byte changed", flip(blob, 3)),
        invalid("key version changed", blob[: header_len - 1] + b"\x02" + blob[header_len:]),
        invalid("format version 2", b"\x02" + blob[1:]),
        invalid("format version 0", b"\x00" + blob[1:]),
        invalid("kind 0", blob[:1] + b"\x00" + blob[2:]),
        invalid("kind 3", blob[:1] + b"\x03" + blob[2:]),
        invalid("kind changed to user key", blob[:1] + b"\x02" + blob[2:]),
        invalid("key id length 0", blob[:2] + b"\x00" + blob[3:]),
        invalid("key id length 65", blob[:2] + b"\x41" + blob[3:]),
        invalid("key version 0", blob[: header_len - 4] + bytes(4) + blob[header_len:]),
        invalid("truncated by one byte", blob[:-1]),
        invalid("tag missing", blob[:-16]),
        invalid("header only", blob[:header_len]),
        invalid("empty", b""),
        invalid("one byte", b"\x01"),
        invalid("one byte appended", blob + b"\x00"),
        invalid("non-ASCII key id", blob[:3] + b"\xff" + blob[4:]),
        invalid(
            "user id changed",
            flip(user_blob, len(bytes.fromhex(user["header"])) - 1),
            material=user["material"],
            context=user["context"],
        ),
        invalid(
            "user id length 0",
            user_blob[:user_len_at] + b"\x00\x00" + user_blob[user_len_at + 2 :],
            material=user["material"],
            context=user["context"],
        ),
    ]
    return {
        "format": "Strongroom KMS ciphertext blob, version 1",
        "spec": "docs/formats.md, section 'KMS ciphertext blob, version 1'",
        "valid": valid,
        "invalid": invalids,
    }


# -- wrap ---------------------------------------------------------------------------------------


def wrap_case(name: str, parts: list[str | int], material: bytes) -> dict[str, Any]:
    parent = fixed(f"wrap/parent/{name}", 32)
    nonce = fixed(f"wrap/nonce/{name}", 12)
    identity = key_identity(*parts)
    ours = wrap_key_with(parent, material, identity, nonce)
    aad = b"strongroom/wrap/v1" + spec_identity(parts)
    theirs = b"\x01" + nonce + AESGCM(parent).encrypt(nonce, material, aad)
    if ours != theirs or identity != spec_identity(parts):
        raise SystemExit(f"wrap vector {name!r}: the code and the spec disagree")
    return {
        "name": name,
        "parent": parent.hex(),
        "identity_parts": parts,
        "identity": identity.hex(),
        "material": material.hex(),
        "nonce": nonce.hex(),
        "aad": aad.hex(),
        "wrapped": ours.hex(),
    }


def wrap_vectors() -> dict[str, Any]:
    valid = [
        wrap_case(
            "KMS key version material under a tenant KEK",
            ["keyver", TENANT, KEY_ID, 1],
            fixed("wrap/material/keyver", 32),
        ),
        wrap_case(
            "tenant KEK under the root key", ["tenant", TENANT], fixed("wrap/material/kek", 32)
        ),
        wrap_case(
            "access key secret under the root key",
            ["principal", TENANT, "AKIAIOSFODNN7EXAMPLE"],
            b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYab",
        ),
        wrap_case("empty material", ["test", "", "\u00e9"], b""),
    ]
    base = valid[0]
    wrapped = bytes.fromhex(base["wrapped"])

    def invalid(name: str, data: bytes, **changes: Any) -> dict[str, Any]:
        case = {
            "name": name,
            "parent": base["parent"],
            "identity": base["identity"],
            "wrapped": data.hex(),
        }
        case.update(changes)
        return case

    invalids = [
        invalid(
            "another version", wrapped, identity=key_identity("keyver", TENANT, KEY_ID, 2).hex()
        ),
        invalid(
            "another tenant",
            wrapped,
            identity=key_identity("keyver", "444455556666", KEY_ID, 1).hex(),
        ),
        invalid(
            "identity parts joined differently",
            wrapped,
            identity=key_identity("keyver", TENANT + KEY_ID, "", 1).hex(),
        ),
        invalid("another parent", wrapped, parent=fixed("wrap/parent/other", 32).hex()),
        invalid("version byte 2", b"\x02" + wrapped[1:]),
        invalid("nonce bit flipped", flip(wrapped, 1)),
        invalid("tag bit flipped", flip(wrapped, len(wrapped) - 1)),
        invalid("truncated", wrapped[:-1]),
        invalid("shorter than version, nonce and tag", wrapped[:28]),
        invalid("empty", b""),
    ]
    return {
        "format": "Strongroom wrapped key, version 1",
        "spec": "docs/formats.md, section 'Wrapped key, version 1'",
        "valid": valid,
        "invalid": invalids,
    }


# -- context ------------------------------------------------------------------------------------


def context_vectors() -> dict[str, Any]:
    contexts: list[tuple[str, dict[str, str] | None]] = [
        ("none", None),
        ("empty", {}),
        ("one pair", {"purpose": "test"}),
        ("ab=c", {"ab": "c"}),
        ("a=bc", {"a": "bc"}),
        ("empty key and value", {"": ""}),
        (
            "sorted by UTF-8 bytes, not by insertion or case",
            {"b": "2", "a": "1", "B": "3", "\u00e9": "4", "\U0001f511": "5", "\uffff": "6"},
        ),
        ("prefix keys sort shorter first", {"ab": "x", "a": "y", "abc": "z"}),
    ]
    valid = []
    for name, context in contexts:
        encoded = encode_context(context)
        if encoded != spec_context(context):
            raise SystemExit(f"context vector {name!r}: the code and the spec disagree")
        valid.append({"name": name, "context": context, "encoded": encoded.hex()})

    def pair(key: bytes, value: bytes) -> bytes:
        return u32(len(key)) + key + u32(len(value)) + value

    invalids = [
        ("empty", b""),
        ("count truncated", b"\x00\x00\x00"),
        ("count 1, no pair", u32(1)),
        ("value missing", u32(1) + u32(1) + b"a"),
        ("value length past the end", u32(1) + pair(b"a", b"b")[:-1]),
        ("trailing byte", u32(0) + b"\x00"),
        ("trailing pair", u32(1) + pair(b"a", b"b") + pair(b"c", b"d")),
        ("pairs out of order", u32(2) + pair(b"b", b"1") + pair(b"a", b"2")),
        ("duplicate key", u32(2) + pair(b"a", b"1") + pair(b"a", b"2")),
        ("key not UTF-8", u32(1) + pair(b"\xff", b"v")),
        ("value not UTF-8", u32(1) + pair(b"k", b"\xc3")),
        ("count larger than the pairs", u32(0xFFFFFFFF) + pair(b"a", b"b")),
    ]
    return {
        "format": "Strongroom canonical encryption context",
        "spec": "docs/formats.md, section 'Encryption context (canonical encoding)'",
        "valid": valid,
        "invalid": [{"name": n, "encoded": data.hex()} for n, data in invalids],
    }


FILES = {
    "blob_v1.json": blob_vectors,
    "wrap_v1.json": wrap_vectors,
    "context_v1.json": context_vectors,
}


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, build in FILES.items():
        path = HERE / name
        text = render(build())
        if check:
            if not path.exists() or path.read_text("utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, "utf-8")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
