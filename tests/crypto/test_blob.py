import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto import BlobHeader, BlobKind, InvalidBlob, open_blob, parse_header, seal
from strongroom.crypto.context import decode_context, encode_context
from strongroom.crypto.hazmat import new_key

KEY = new_key()
HEADER = BlobHeader("1234abcd-12ab-34cd-56ef-1234567890ab", 3)


def test_round_trip_binds_context_and_tenant() -> None:
    blob = seal(KEY, "111122223333", HEADER, b"secret", {"purpose": "test"})
    assert open_blob(KEY, "111122223333", blob, {"purpose": "test"}) == b"secret"
    assert parse_header(blob)[0] == HEADER
    with pytest.raises(InvalidBlob):
        open_blob(KEY, "111122223333", blob, {"purpose": "other"})
    with pytest.raises(InvalidBlob):
        open_blob(KEY, "444455556666", blob, {"purpose": "test"})


def test_concatenation_ambiguity_is_impossible() -> None:
    assert encode_context({"ab": "c"}) != encode_context({"a": "bc"})
    blob = seal(KEY, "1", HEADER, b"x", {"ab": "c"})
    with pytest.raises(InvalidBlob):
        open_blob(KEY, "1", blob, {"a": "bc"})


def test_user_key_blob_names_the_user() -> None:
    header = BlobHeader("k", 1, BlobKind.USER_KEY, "user-42")
    blob = seal(KEY, "1", header, b"x")
    assert parse_header(blob)[0].user_id == "user-42"


@given(st.binary(max_size=200))
def test_random_bytes_never_parse_into_anything_but_invalid_blob(data: bytes) -> None:
    with pytest.raises(InvalidBlob):
        open_blob(KEY, "1", data)


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5))
def test_context_encoding_round_trips(context: dict[str, str]) -> None:
    assert decode_context(encode_context(context)) == context
