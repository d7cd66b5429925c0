"""The TTLV codec: the specification's examples and test-case messages, and fuzzing."""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.kmip.ttlv import (
    MAX_DEPTH,
    Item,
    ItemType,
    TtlvError,
    decode,
    encode,
    message_length,
    structure,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "kmip_ttlv_v1.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["primitives"], ids=lambda v: v["name"])
def test_spec_primitive_examples(vector: dict[str, object]) -> None:
    raw = bytes.fromhex(str(vector["hex"]))
    item = decode(raw)
    assert item.type.name == vector["type"]
    if vector["value"] is not None:
        value = item.value.hex() if isinstance(item.value, bytes) else item.value
        assert value == vector["value"]
    assert encode(item) == raw


def _tree(item: Item) -> dict[str, object]:
    if isinstance(item.value, tuple):
        return {
            "tag": f"0x{item.tag:06X}",
            "type": item.type.name,
            "items": [_tree(c) for c in item.value],
        }
    value = item.value.hex() if isinstance(item.value, bytes) else item.value
    return {"tag": f"0x{item.tag:06X}", "type": item.type.name, "value": value}


@pytest.mark.parametrize("vector", VECTORS["messages"], ids=lambda v: v["name"])
def test_spec_test_case_messages(vector: dict[str, object]) -> None:
    raw = bytes.fromhex(str(vector["hex"]))
    item = decode(raw)
    assert _tree(item) == vector["tree"]
    assert encode(item) == raw
    assert message_length(raw[:8]) == len(raw)


def test_spec_values_decode_to_what_the_spec_says() -> None:
    by_name = {v["name"]: v for v in VECTORS["primitives"]}
    assert by_name["long integer 123456789000000000"]["value"] == 123456789000000000
    assert (
        by_name["big integer 1234567890000000000000000000"]["value"] == 1234567890000000000000000000
    )
    assert by_name["text string Hello World"]["value"] == "Hello World"
    assert by_name["interval 10 days"]["value"] == 864000
    assert by_name["date-time 2008-03-14 11:56:40 UTC"]["value"] == 0x47DA67F8


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x42\x00\x20\x02\x00\x00\x00",  # short header
        b"\x42\x00\x20\x02\x00\x00\x00\x08" + b"\0" * 8,  # integer of length 8
        b"\x42\x00\x20\x0c\x00\x00\x00\x00",  # unknown type
        b"\x99\x00\x20\x02\x00\x00\x00\x04" + b"\0" * 8,  # not a KMIP tag
        b"\x42\x00\x20\x06\x00\x00\x00\x08" + b"\0" * 7 + b"\x02",  # boolean 2
        b"\x42\x00\x20\x07\x00\x00\x00\x01\xff" + b"\0" * 7,  # not UTF-8
        b"\x42\x00\x20\x08\x00\x00\x00\x01\x01\x01" + b"\0" * 6,  # non-zero padding
        b"\x42\x00\x20\x01\x00\x00\x00\x10" + b"\0" * 8,  # structure longer than its items
        b"\x42\x00\x20\x08\x00\x00\xff\xff",  # length past the end
        b"\x42\x00\x20\x02\x00\x00\x00\x04" + b"\0" * 8 + b"\0",  # trailing byte
    ],
)
def test_malformed_input_is_a_ttlv_error(raw: bytes) -> None:
    with pytest.raises(TtlvError):
        decode(raw)


def test_nesting_is_bounded() -> None:
    item = structure(0x420020)
    for _ in range(MAX_DEPTH + 1):
        item = structure(0x420020, item)
    with pytest.raises(TtlvError, match="deeper"):
        decode(encode(item))


def test_byte_strings_never_show_in_repr() -> None:
    assert "secret" not in repr(Item(0x420043, ItemType.BYTE_STRING, b"secret"))


tags = st.integers(0x420000, 0x42FFFF)
leaves = st.one_of(
    st.builds(Item, tags, st.just(ItemType.INTEGER), st.integers(-(2**31), 2**31 - 1)),
    st.builds(Item, tags, st.just(ItemType.LONG_INTEGER), st.integers(-(2**63), 2**63 - 1)),
    st.builds(Item, tags, st.just(ItemType.BIG_INTEGER), st.integers(-(2**200), 2**200)),
    st.builds(Item, tags, st.just(ItemType.ENUMERATION), st.integers(0, 2**32 - 1)),
    st.builds(Item, tags, st.just(ItemType.BOOLEAN), st.booleans()),
    st.builds(Item, tags, st.just(ItemType.TEXT_STRING), st.text(max_size=40)),
    st.builds(Item, tags, st.just(ItemType.BYTE_STRING), st.binary(max_size=40)),
    st.builds(Item, tags, st.just(ItemType.DATE_TIME), st.integers(-(2**63), 2**63 - 1)),
    st.builds(Item, tags, st.just(ItemType.INTERVAL), st.integers(0, 2**32 - 1)),
)
trees = st.recursive(
    leaves,
    lambda children: st.builds(
        lambda tag, items: Item(tag, ItemType.STRUCTURE, tuple(items)),
        tags,
        st.lists(children, max_size=5),
    ),
    max_leaves=30,
)


@given(trees)
def test_encode_then_decode_is_identity(item: Item) -> None:
    raw = encode(item)
    assert len(raw) % 8 == 0
    assert decode(raw) == item


@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_ttlv_error(raw: bytes) -> None:
    try:
        item = decode(raw)
    except TtlvError:
        return
    assert decode(encode(item)) == item  # big integers may re-encode shorter


@given(trees, st.data())
def test_mutated_messages_decode_or_raise_ttlv_error(item: Item, data: st.DataObject) -> None:
    raw = bytearray(encode(item))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(TtlvError):
        decode(bytes(raw[:cut]))


def test_message_length_refuses_a_non_structure() -> None:
    with pytest.raises(TtlvError):
        message_length(struct.pack(">II", 0x42007802, 8))
