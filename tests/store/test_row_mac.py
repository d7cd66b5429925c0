"""The sealed row format: vectors (``tests/vectors/row_mac_v1.json``) and properties.

Every stored record is ``0x01 || HMAC-SHA256(K_rows, label || lp(identity parts) || value)
|| value``; anything else, or the right bytes under another row's identity, is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.data.object_index import Entry
from strongroom.errors import TamperedRecordError
from strongroom.kms.authz.grant_tokens import TOKEN_PURPOSE, _grant_key
from strongroom.kms.authz.grants import GrantRecord
from strongroom.ports.row_mac import StoreSecrets
from strongroom.ports.sealed_store import SealedTx

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
DATA: dict[str, Any] = json.loads((VECTORS / "row_mac_v1.json").read_text("utf-8"))
SECRETS = StoreSecrets(bytes.fromhex(DATA["master_key"]))


def test_vector_file_matches_its_generator() -> None:
    script = VECTORS / "generate_row_mac.py"
    assert subprocess.run([sys.executable, str(script), "--check"], check=False).returncode == 0


@pytest.mark.parametrize("case", DATA["valid"], ids=lambda c: "/".join(c["identity"]))
def test_valid_vectors_seal_and_open(case: dict[str, Any]) -> None:
    value, sealed = bytes.fromhex(case["value"]), bytes.fromhex(case["sealed"])
    assert SECRETS.seal(case["identity"], value) == sealed
    assert SECRETS.open(case["identity"], sealed) == value
    assert SECRETS.key_id == DATA["key_id"]


@pytest.mark.parametrize("case", DATA["invalid"], ids=lambda c: c["why"])
def test_invalid_vectors_are_refused(case: dict[str, Any]) -> None:
    with pytest.raises(TamperedRecordError) as info:
        SECRETS.open(case["identity"], bytes.fromhex(case["sealed"]))
    assert info.value.record == "/".join(case["identity"])
    assert case["identity"][2] not in str(info.value)  # the message names the kind only


def test_grant_token_key_vector() -> None:
    case = DATA["grant_token_key"]
    assert SECRETS.purpose_key(TOKEN_PURPOSE).hex() == case["k_tokens"]
    grant = GrantRecord(
        grant_id=case["grant_id"],
        key_id=case["key_id"],
        account_id=case["account"],
        grantee_principal="*",
        operations=("Encrypt",),
        creation_date=0.0,
    )
    tx: Any = SealedTx(None, SECRETS)  # type: ignore[arg-type]  # only its secrets are used
    assert _grant_key(tx, grant).hex() == case["k_grant"]


def test_object_index_entry_vectors() -> None:
    current, in_flight = (bytes.fromhex(v) for v in DATA["object_index_entries"])
    assert Entry.from_bytes(current).ok == ["00" * 16]
    assert Entry.from_bytes(in_flight).ok == ["-", "11" * 16]
    assert Entry(["00" * 16]).to_bytes() == current


identities = st.lists(st.text(max_size=20), min_size=1, max_size=4)


@given(identity=identities, value=st.binary(max_size=200), data=st.data())
def test_any_change_to_a_sealed_row_is_refused(
    identity: list[str], value: bytes, data: st.DataObject
) -> None:
    sealed = SECRETS.seal(identity, value)
    assert SECRETS.open(identity, sealed) == value
    where = data.draw(st.integers(0, len(sealed) - 1))
    changed = bytearray(sealed)
    changed[where] ^= data.draw(st.integers(1, 255))
    with pytest.raises(TamperedRecordError):
        SECRETS.open(identity, bytes(changed))
    with pytest.raises(TamperedRecordError):
        SECRETS.open(identity, sealed[: data.draw(st.integers(0, len(sealed) - 1))])


@given(a=identities, b=identities, value=st.binary(max_size=50))
def test_a_row_does_not_open_under_another_identity(
    a: list[str], b: list[str], value: bytes
) -> None:
    if a != b:
        with pytest.raises(TamperedRecordError):
            SECRETS.open(b, SECRETS.seal(a, value))
