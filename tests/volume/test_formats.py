"""The volume token and the pin JWE: vectors in tests/vectors, strict parsing (hypothesis)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import InvalidCiphertextError, StrongroomError, ValidationError
from strongroom.volume.jwe import PinHeader, open_sealed, parse, pin_context, seal
from strongroom.volume.token import (
    VolumeToken,
    keyslot_check,
    parse_token,
    passphrase_of,
    volume_context,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
TOKENS = json.loads((VECTORS / "volume_token_v1.json").read_text())
TOKENS_V2 = json.loads((VECTORS / "volume_token_v2.json").read_text())
JWES = json.loads((VECTORS / "clevis_pin_v1.json").read_text())
ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_vector_files_are_what_the_generator_writes() -> None:
    done = subprocess.run(
        [sys.executable, str(VECTORS / "generate_volume.py"), "--check"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("vector", TOKENS["valid"], ids=lambda v: v["name"])
def test_valid_token_vectors(vector: dict[str, Any]) -> None:
    token = parse_token(vector["token"], 3)
    assert token.keyslot == vector["keyslot"]
    assert token.to_json() == vector["token"]
    assert passphrase_of(bytes.fromhex(vector["data_key"])).decode() == vector["passphrase"]


@pytest.mark.parametrize("vector", TOKENS["valid"], ids=lambda v: v["name"])
def test_version_1_tokens_stay_version_1_and_have_no_check(vector: dict[str, Any]) -> None:
    token = parse_token(vector["token"])
    assert token.version == 1 and token.check is None
    with pytest.raises(ValueError, match="no check"):
        token.matches(vector["passphrase"].encode(), "")
    upgraded = token.with_check(vector["passphrase"].encode(), "c2FsdA==")
    assert upgraded.version == 2 and upgraded.matches(vector["passphrase"].encode(), "c2FsdA==")
    assert not upgraded.matches(vector["passphrase"].encode(), "")
    assert parse_token(upgraded.to_json()) == upgraded


@pytest.mark.parametrize("vector", TOKENS_V2["valid"], ids=lambda v: v["name"])
def test_valid_token_v2_vectors(vector: dict[str, Any]) -> None:
    token = parse_token(vector["token"], 3)
    passphrase = passphrase_of(bytes.fromhex(vector["data_key"]))
    assert passphrase.decode() == vector["passphrase"]
    assert token.version == 2 and token.keyslot == vector["keyslot"]
    assert token.check == bytes.fromhex(vector["check"])
    salt = vector["keyslot_salt"]
    assert keyslot_check(passphrase, token.volume, token.keyslot, salt) == token.check
    assert token.matches(passphrase, salt)
    assert token.to_json() == vector["token"]


@pytest.mark.parametrize("vector", TOKENS_V2["mismatches"], ids=lambda v: v["name"])
def test_token_v2_checks_that_do_not_match(vector: dict[str, Any]) -> None:
    token = parse_token(vector["token"])
    assert not token.matches(vector["passphrase"].encode(), vector["keyslot_salt"])


@pytest.mark.parametrize(
    "vector", TOKENS["invalid"] + TOKENS_V2["invalid"], ids=lambda v: v["name"]
)
def test_invalid_token_vectors(vector: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=vector["error"]) as caught:
        parse_token(vector["token"], 3)
    assert "token 3 is malformed" in str(caught.value)


@pytest.mark.parametrize("vector", JWES["valid"], ids=lambda v: v["name"])
def test_valid_jwe_vectors(vector: dict[str, Any]) -> None:
    parsed = parse(vector["jwe"])
    key, iv = bytes.fromhex(vector["data_key"]), bytes.fromhex(vector["iv"])
    plaintext = bytes.fromhex(vector["plaintext"])
    assert open_sealed(parsed, key) == plaintext
    assert seal(parsed.pin, key, plaintext, iv) == vector["jwe"]
    assert json.loads(vector["protected_header"])["clevis"]["strongroom"] == parsed.pin.to_json()


@pytest.mark.parametrize("vector", JWES["invalid"], ids=lambda v: v["name"])
def test_invalid_jwe_vectors(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidCiphertextError):
        open_sealed(parse(vector["jwe"]), bytes.fromhex(vector["data_key"]))


def test_contexts_keep_volumes_and_pins_apart() -> None:
    volume = volume_context("uuid-1", "111122223333", {"pvc": "x"})
    assert volume == {
        "pvc": "x",
        "strongroom:tenant": "111122223333",
        "strongroom:volume": "uuid-1",
    }
    assert pin_context({"host": "a"}) == {"host": "a", "strongroom:pin": "clevis"}
    for bad in ({"strongroom:volume": "other"}, {"Strongroom:Tenant": "x"}):
        with pytest.raises(ValidationError, match="reserved"):
            volume_context("uuid-1", "111122223333", bad)
        with pytest.raises(ValidationError, match="reserved"):
            pin_context(bad)


texts = st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["strongroom", "clevis"]) | texts,
            "keyslots": st.lists(st.sampled_from(["0", "1", "31", "32", "-1", "x"]), max_size=2),
            "version": st.sampled_from([1, 2, 3, True, 2.0, "1"]),
            "check": st.sampled_from(["A" * 43 + "=", "A" * 44, "AAAA"]) | texts,
            "key_id": st.sampled_from([ARN, "alias/x", ""]) | texts,
            "wrapped_key": st.sampled_from(["AAAA", "@@", ""]) | texts,
            "context": st.dictionaries(
                st.sampled_from(["strongroom:volume", "strongroom:tenant", "a"]),
                st.sampled_from(["111122223333", "u"]) | st.integers(),
                max_size=3,
            ),
            "other": json_values,
        },
    )
)
def test_parse_token_accepts_only_well_formed_tokens(obj: dict[str, Any]) -> None:
    try:
        token = parse_token(obj)
    except ValidationError:
        return
    assert parse_token(token.to_json()) == token
    assert token.context["strongroom:tenant"] == "111122223333"
    assert token.version == obj["version"] and (token.check is None) == (token.version == 1)


@given(
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=12, max_size=12),
    st.binary(max_size=200),
    st.binary(min_size=1, max_size=300),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)
def test_jwe_round_trip_and_every_change_fails(
    key: bytes, iv: bytes, plaintext: bytes, blob: bytes, context: dict[str, str]
) -> None:
    pin = PinHeader(ARN, blob, context, endpoint="https://kms:8443")
    jwe = seal(pin, key, plaintext, iv)
    parsed = parse(jwe)
    assert parsed.pin == pin and open_sealed(parsed, key) == plaintext
    for index in range(0, len(jwe), max(1, len(jwe) // 40)):
        char = jwe[index]
        changed = jwe[:index] + ("A" if char != "A" else "B") + jwe[index + 1 :]
        try:
            assert open_sealed(parse(changed), key) == plaintext and changed == jwe
        except StrongroomError:
            continue


@given(st.text(max_size=300))
def test_parse_jwe_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidCiphertextError):
        parse(text)


def test_values_keep_secrets_out_of_repr() -> None:
    token = VolumeToken(0, ARN, b"secret-blob", {"strongroom:volume": "u"}, b"c" * 32)
    assert "secret-blob" not in repr(token) and "ccc" not in repr(token)
    pin = PinHeader(ARN, b"secret-blob", {})
    assert "secret-blob" not in repr(pin)
