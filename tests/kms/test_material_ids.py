"""``KeyMaterialId`` values: the checked-in vectors, the construction, and what they hide."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from strongroom.kms.material import (
    generated_material_id,
    imported_material_id,
    material_fingerprint_key,
)

VECTORS = Path(__file__).parents[1] / "vectors" / "key_material_id_v1.json"


def _lp(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def test_vectors() -> None:
    vector = json.loads(VECTORS.read_text(encoding="utf-8"))
    kek = bytes.fromhex(vector["tenant_kek"])
    fingerprint = material_fingerprint_key(kek)
    assert fingerprint.hex() == vector["fingerprint_key"]
    # the construction as docs/formats.md writes it, with the primitives named there
    expected = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"strongroom/kms/material-id/v1"
    ).derive(kek)
    assert fingerprint == expected
    key_id = vector["key_id"]
    for case in vector["generated"]:
        version = case["version"]
        assert generated_material_id(fingerprint, key_id, version) == case["material_id"]
        message = _lp(b"generated", key_id.encode(), version.to_bytes(4, "big"))
        assert hmac.new(fingerprint, message, hashlib.sha256).hexdigest() == case["material_id"]
    for case in vector["imported"]:
        material = bytes.fromhex(case["material"])
        assert imported_material_id(fingerprint, key_id, material) == case["material_id"]


@given(
    kek=st.binary(min_size=32, max_size=32),
    version=st.integers(min_value=1, max_value=2**32 - 1),
)
def test_ids_are_aws_shaped_and_differ_by_version_and_tenant(kek: bytes, version: int) -> None:
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    fingerprint = material_fingerprint_key(kek)
    material_id = generated_material_id(fingerprint, key_id, version)
    assert len(material_id) == 64 and set(material_id) <= set("0123456789abcdef")
    other_version = version - 1 if version > 1 else version + 1
    assert material_id != generated_material_id(fingerprint, key_id, other_version)
    other_tenant = material_fingerprint_key(bytes(b ^ 1 for b in kek))
    assert material_id != generated_material_id(other_tenant, key_id, version)
    # generated and imported ids live apart even for the same bytes
    assert material_id != imported_material_id(fingerprint, key_id, version.to_bytes(4, "big"))
