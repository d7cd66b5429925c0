"""The format vectors in tests/vectors/, checked in both directions.

Making: ``seal_with`` / ``wrap_key_with`` / ``encode_context`` reproduce the recorded bytes
from the recorded inputs. Opening: ``open_blob`` / ``unwrap_key`` / ``decode_context`` give
back the inputs, and refuse every invalid vector.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import (
    BlobHeader,
    BlobKind,
    InvalidBlob,
    UnwrapFailed,
    decode_context,
    encode_context,
    key_identity,
    open_blob,
    parse_header,
    unwrap_key,
)
from strongroom.crypto.blob import seal_with
from strongroom.crypto.hazmat import hkdf_expand_sha256
from strongroom.crypto.wrap import wrap_key_with

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text("utf-8"))
    return data


BLOB = load("blob_v1.json")
WRAP = load("wrap_v1.json")
CONTEXT = load("context_v1.json")


def names(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


# -- blob ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BLOB["valid"], ids=names(BLOB["valid"]))
def test_blob_vector_is_reproduced(case: dict[str, Any]) -> None:
    header = BlobHeader(
        case["key_id"], case["key_version"], BlobKind(case["kind"]), case["user_id"]
    )
    assert header.encode().hex() == case["header"]
    assert encode_context(case["context"]).hex() == case["encoded_context"]
    blob = seal_with(
        bytes.fromhex(case["material"]),
        case["tenant"],
        header,
        bytes.fromhex(case["plaintext"]),
        case["context"],
        bytes.fromhex(case["salt"]),
        bytes.fromhex(case["nonce"]),
    )
    assert blob.hex() == case["blob"]


@pytest.mark.parametrize("case", BLOB["valid"], ids=names(BLOB["valid"]))
def test_blob_vector_opens(case: dict[str, Any]) -> None:
    blob = bytes.fromhex(case["blob"])
    material = bytes.fromhex(case["material"])
    plaintext = open_blob(material, case["tenant"], blob, case["context"])
    assert plaintext.hex() == case["plaintext"]
    header, offset = parse_header(blob)
    assert header == BlobHeader(
        case["key_id"], case["key_version"], BlobKind(case["kind"]), case["user_id"]
    )
    assert blob[:offset].hex() == case["header"]
    salt = blob[offset : offset + 16]
    nonce = blob[offset + 16 : offset + 28]
    assert (salt.hex(), nonce.hex()) == (case["salt"], case["nonce"])
    # The recorded intermediate values are the ones the blob is made of.
    message_key = hkdf_expand_sha256(material, b"strongroom/blob/v1" + salt)
    assert message_key.hex() == case["message_key"]
    aad = bytes.fromhex(case["aad"])
    assert aad.startswith(b"strongroom/blob/v1")
    assert aad.endswith(bytes.fromhex(case["header"]) + bytes.fromhex(case["encoded_context"]))
    assert AESGCM(message_key).decrypt(nonce, blob[offset + 28 :], aad) == plaintext


@pytest.mark.parametrize("case", BLOB["invalid"], ids=names(BLOB["invalid"]))
def test_invalid_blob_vector_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidBlob):
        open_blob(
            bytes.fromhex(case["material"]),
            case["tenant"],
            bytes.fromhex(case["blob"]),
            case["context"],
        )


def test_blob_vectors_show_the_context_ambiguity_is_gone() -> None:
    by_name = {case["name"]: case for case in BLOB["valid"]}
    ab, a = by_name["context ab=c"], by_name["context a=bc"]
    empty = by_name["empty context encodes like none"]
    # Same material, salt, nonce and plaintext: only the context differs.
    for field in ("material", "salt", "nonce", "plaintext"):
        assert ab[field] == a[field] == empty[field]
    assert ab["blob"] != a["blob"]
    with pytest.raises(InvalidBlob):
        open_blob(
            bytes.fromhex(ab["material"]), ab["tenant"], bytes.fromhex(ab["blob"]), a["context"]
        )
    assert open_blob(
        bytes.fromhex(empty["material"]), empty["tenant"], bytes.fromhex(empty["blob"]), None
    ) == bytes.fromhex(empty["plaintext"])


def test_blob_vectors_cover_each_kind_and_edge() -> None:
    valid = BLOB["valid"]
    assert {case["kind"] for case in valid} == {1, 2}
    assert max(case["key_version"] for case in valid) == 0xFFFFFFFF
    assert max(len(case["key_id"]) for case in valid) == 64
    assert max(len(case["plaintext"]) // 2 for case in valid) == 4096
    assert len(BLOB["invalid"]) >= 20


# -- wrap ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", WRAP["valid"], ids=names(WRAP["valid"]))
def test_wrap_vector_is_reproduced(case: dict[str, Any]) -> None:
    identity = key_identity(*case["identity_parts"])
    assert identity.hex() == case["identity"]
    assert bytes.fromhex(case["aad"]) == b"strongroom/wrap/v1" + identity
    wrapped = wrap_key_with(
        bytes.fromhex(case["parent"]),
        bytes.fromhex(case["material"]),
        identity,
        bytes.fromhex(case["nonce"]),
    )
    assert wrapped.hex() == case["wrapped"]


@pytest.mark.parametrize("case", WRAP["valid"], ids=names(WRAP["valid"]))
def test_wrap_vector_unwraps(case: dict[str, Any]) -> None:
    material = unwrap_key(
        bytes.fromhex(case["parent"]),
        bytes.fromhex(case["wrapped"]),
        bytes.fromhex(case["identity"]),
    )
    assert material.hex() == case["material"]


@pytest.mark.parametrize("case", WRAP["invalid"], ids=names(WRAP["invalid"]))
def test_invalid_wrap_vector_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(UnwrapFailed):
        unwrap_key(
            bytes.fromhex(case["parent"]),
            bytes.fromhex(case["wrapped"]),
            bytes.fromhex(case["identity"]),
        )


# -- context ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CONTEXT["valid"], ids=names(CONTEXT["valid"]))
def test_context_vector(case: dict[str, Any]) -> None:
    assert encode_context(case["context"]).hex() == case["encoded"]
    assert decode_context(bytes.fromhex(case["encoded"])) == (case["context"] or {})


@pytest.mark.parametrize("case", CONTEXT["invalid"], ids=names(CONTEXT["invalid"]))
def test_invalid_context_vector_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        decode_context(bytes.fromhex(case["encoded"]))


def test_distinct_context_vectors_encode_distinctly() -> None:
    encoded: dict[str, set[str]] = {}
    for case in CONTEXT["valid"]:
        key = json.dumps(case["context"] or {}, sort_keys=True)
        encoded.setdefault(case["encoded"], set()).add(key)
    assert all(len(contexts) == 1 for contexts in encoded.values())


# -- the files are what the generator makes -----------------------------------------------------


def test_vector_files_match_the_generator() -> None:
    result = subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
