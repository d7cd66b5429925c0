"""``NotAStream``: input that does not begin as a stream, told apart from a bad stream."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto.stream import MAGIC, InvalidStream, NotAStream, read_header


def _header_of(data: bytes) -> None:
    read_header(io.BytesIO(data).read)


@given(st.binary(max_size=200).filter(lambda b: not b.startswith(MAGIC)))
def test_anything_without_the_magic_is_not_a_stream(data: bytes) -> None:
    with pytest.raises(NotAStream) as caught:
        _header_of(data)
    assert caught.value.leading == data[:4]  # only the magic was read
    assert caught.value.empty == (not data)


def test_a_newer_version_is_not_a_stream_and_says_which() -> None:
    with pytest.raises(NotAStream) as caught:
        _header_of(MAGIC + bytes([7, 1, 0, 20]) + bytes(40))
    assert caught.value.unknown_version == 7


@given(st.binary(max_size=60))
def test_a_damaged_header_after_the_magic_is_invalid_not_foreign(tail: bytes) -> None:
    data = MAGIC + bytes([1, 1, 0, 20]) + tail
    with pytest.raises(InvalidStream) as caught:
        _header_of(data)
    assert not isinstance(caught.value, NotAStream)
