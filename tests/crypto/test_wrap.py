"""Key wrapping: round trip, identity binding, and every malformed input as UnwrapFailed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto import UnwrapFailed, key_identity, unwrap_key, wrap_key
from strongroom.crypto.hazmat import new_key

PARENT = new_key()
IDENTITY = key_identity("keyver", "111122223333", "key-1", 1)


def test_round_trip_and_randomised() -> None:
    material = new_key()
    first = wrap_key(PARENT, material, IDENTITY)
    second = wrap_key(PARENT, material, IDENTITY)
    assert first != second
    assert first[0] == 1
    assert len(first) == 1 + 12 + len(material) + 16
    assert material not in first
    assert unwrap_key(PARENT, first, IDENTITY) == material
    assert unwrap_key(PARENT, second, IDENTITY) == material


@pytest.mark.parametrize(
    "identity",
    [
        key_identity("keyver", "111122223333", "key-1", 2),
        key_identity("keyver", "444455556666", "key-1", 1),
        key_identity("keyver", "111122223333", "key-2", 1),
        key_identity("tenant", "111122223333", "key-1", 1),
        key_identity("keyver", "111122223333", "key-1"),
        key_identity("keyver", "111122223333", "key-1", 1, ""),
        b"",
    ],
)
def test_identity_is_bound(identity: bytes) -> None:
    wrapped = wrap_key(PARENT, new_key(), IDENTITY)
    with pytest.raises(UnwrapFailed):
        unwrap_key(PARENT, wrapped, identity)


def test_parent_is_bound() -> None:
    wrapped = wrap_key(PARENT, new_key(), IDENTITY)
    with pytest.raises(UnwrapFailed):
        unwrap_key(new_key(), wrapped, IDENTITY)


def test_every_bit_flip_and_truncation_fails() -> None:
    wrapped = wrap_key(PARENT, b"k" * 32, IDENTITY)
    for index in range(len(wrapped)):
        for bit in range(8):
            flipped = wrapped[:index] + bytes([wrapped[index] ^ (1 << bit)]) + wrapped[index + 1 :]
            with pytest.raises(UnwrapFailed):
                unwrap_key(PARENT, flipped, IDENTITY)
        with pytest.raises(UnwrapFailed):
            unwrap_key(PARENT, wrapped[:index], IDENTITY)
    with pytest.raises(UnwrapFailed):
        unwrap_key(PARENT, wrapped + b"\x00", IDENTITY)


@given(
    st.lists(st.text(max_size=6) | st.integers(0, 10**6), max_size=5),
    st.lists(st.text(max_size=6) | st.integers(0, 10**6), max_size=5),
)
def test_key_identity_is_unambiguous(a: list[str | int], b: list[str | int]) -> None:
    same = [str(p) for p in a] == [str(p) for p in b]
    assert (key_identity(*a) == key_identity(*b)) == same


@given(st.binary(max_size=120))
def test_random_bytes_raise_only_unwrap_failed(data: bytes) -> None:
    with pytest.raises(UnwrapFailed):
        unwrap_key(PARENT, data, IDENTITY)


@given(st.binary(max_size=64))
def test_any_material_round_trips(material: bytes) -> None:
    assert unwrap_key(PARENT, wrap_key(PARENT, material, IDENTITY), IDENTITY) == material


def test_wrong_parent_length_is_unwrap_failed() -> None:
    wrapped = wrap_key(PARENT, b"m" * 32, IDENTITY)
    with pytest.raises(UnwrapFailed):
        unwrap_key(PARENT[:16] + b"x", wrapped, IDENTITY)
