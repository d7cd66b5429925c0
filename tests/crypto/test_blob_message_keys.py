"""MessageKeys (a keyed HMAC copied per message) derives exactly the HKDF-Expand keys."""

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto.blob import (
    SALT_BYTES,
    BlobHeader,
    BlobKind,
    MessageKeys,
    open_blob,
    parse_header,
    seal,
)
from strongroom.crypto.hazmat import hkdf_expand_sha256

MATERIAL = st.binary(min_size=1, max_size=100)
SALT = st.binary(min_size=SALT_BYTES, max_size=SALT_BYTES)


@given(MATERIAL, SALT)
def test_message_key_is_hkdf_expand_of_one_block(material: bytes, salt: bytes) -> None:
    expected = hkdf_expand_sha256(material, b"strongroom/blob/v1" + salt)
    keys = MessageKeys(material)
    assert keys.message_key(salt) == expected
    assert keys.message_key(salt) == expected  # the keyed HMAC is copied, never consumed


@given(
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=64),
    st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    st.booleans(),
)
def test_blobs_open_alike_from_material_or_message_keys(
    material: bytes, plaintext: bytes, context: dict[str, str] | None, user: bool
) -> None:
    header = BlobHeader("k-1", 3, BlobKind.USER_KEY, "u") if user else BlobHeader("k-1", 3)
    keys = MessageKeys(material)
    for sealer in (material, keys):
        blob = seal(sealer, "111122223333", header, plaintext, context)
        assert parse_header(blob)[0] == header
        assert open_blob(material, "111122223333", blob, context) == plaintext
        assert open_blob(keys, "111122223333", blob, context) == plaintext


def test_message_keys_never_show_or_pickle_the_material() -> None:
    material = bytes(range(32))
    keys = MessageKeys(material)
    assert material.hex() not in repr(keys) and "hidden" in repr(keys)
    with pytest.raises(TypeError):
        pickle.dumps(keys)


@given(
    st.binary(min_size=32, max_size=32),
    st.integers(1, 1024),
    st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_a_new_data_key_is_sealed_as_seal_version_seals_it(
    material: bytes, size: int, context: dict[str, str] | None
) -> None:
    keys = MessageKeys(material)
    data_key, blob = keys.seal_new_key("111122223333", "k1", 3, size, context)
    assert len(data_key) == size
    header, end = parse_header(blob)
    assert header == BlobHeader("k1", 3)
    assert open_blob(material, "111122223333", blob, context) == data_key
    assert keys.open("111122223333", blob, end, context) == data_key
    # each call draws a new data key, salt and nonce
    again, other = keys.seal_new_key("111122223333", "k1", 3, size, context)
    assert (again, other[end:]) != (data_key, blob[end:])
    assert blob[end : end + SALT_BYTES] != other[end : end + SALT_BYTES]
