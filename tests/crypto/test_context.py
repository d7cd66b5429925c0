"""The canonical encryption context: one encoding per context, and nothing else decodes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto import decode_context, encode_context

CONTEXTS = st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=6)


@given(CONTEXTS, CONTEXTS)
def test_encoding_is_injective(a: dict[str, str], b: dict[str, str]) -> None:
    assert (encode_context(a) == encode_context(b)) == (a == b)


@given(CONTEXTS, st.randoms())
def test_encoding_ignores_insertion_order(context: dict[str, str], rnd: random.Random) -> None:
    items = list(context.items())
    rnd.shuffle(items)
    assert encode_context(dict(items)) == encode_context(context)


@given(CONTEXTS)
def test_decode_inverts_encode(context: dict[str, str]) -> None:
    assert decode_context(encode_context(context)) == context


@given(st.binary(max_size=200))
def test_random_bytes_decode_canonically_or_raise_value_error(data: bytes) -> None:
    try:
        context = decode_context(data)
    except ValueError:
        return
    assert encode_context(context) == data


@given(CONTEXTS.filter(bool), st.data())
def test_any_change_to_an_encoding_is_refused_or_another_context(
    context: dict[str, str], data: st.DataObject
) -> None:
    encoded = encode_context(context)
    index = data.draw(st.integers(0, len(encoded) - 1))
    changed = encoded[:index] + bytes([encoded[index] ^ data.draw(st.integers(1, 255))])
    changed += encoded[index + 1 :]
    try:
        other = decode_context(changed)
    except ValueError:
        return
    assert other != context


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"ab": "c"}, {"a": "bc"}),
        ({"a": ""}, {"": "a"}),
        ({"a": "b", "c": "d"}, {"a": "bc", "": "d"}),
        ({}, {"": ""}),
    ],
)
def test_known_ambiguities_are_gone(a: dict[str, str], b: dict[str, str]) -> None:
    assert encode_context(a) != encode_context(b)


def test_none_and_empty_encode_alike() -> None:
    assert encode_context(None) == encode_context({}) == b"\x00\x00\x00\x00"
