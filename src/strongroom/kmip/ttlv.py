"""The TTLV encoding of KMIP (OASIS KMIP 1.0-2.1, section 9.1): pure bytes in, bytes out.

Every item is ``tag (3 bytes) | type (1 byte) | length (4 bytes, big-endian) | value``, the
value padded with zero bytes to a multiple of 8. A Structure's value is its items, one after
the other. :func:`decode` parses exactly one item that must fill the input; it checks every
length before it slices, bounds the nesting depth and the number of items, requires zero
padding and raises :class:`TtlvError` (never anything else) for any malformed input, so a
server can answer bad bytes with a KMIP error instead of crashing.
"""

from __future__ import annotations

import datetime
import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAX_DEPTH = 16
"""Structures nest at most this deep (KMIP messages need about 8)."""
MAX_ITEMS = 20_000
"""At most this many items in one message."""
HEADER_BYTES = 8


class TtlvError(ValueError):
    """The bytes are not one well-formed TTLV item (the message says where and why)."""


class ItemType(enum.IntEnum):
    """The TTLV item types (KMIP 2.1 section 9.1.1.2)."""

    STRUCTURE = 0x01
    INTEGER = 0x02
    LONG_INTEGER = 0x03
    BIG_INTEGER = 0x04
    ENUMERATION = 0x05
    BOOLEAN = 0x06
    TEXT_STRING = 0x07
    BYTE_STRING = 0x08
    DATE_TIME = 0x09
    INTERVAL = 0x0A
    DATE_TIME_EXTENDED = 0x0B


Value = "tuple[Item, ...] | int | bool | str | bytes"


@dataclass(frozen=True, slots=True)
class Item:
    """One TTLV item: a tag, a type and a Python value of that type.

    Structure -> ``tuple[Item, ...]``; Integer, Long Integer, Big Integer, Enumeration,
    Interval, Date-Time (POSIX seconds) and Date-Time Extended (microseconds) -> ``int``;
    Boolean -> ``bool``; Text String -> ``str``; Byte String -> ``bytes``.
    """

    tag: int
    type: ItemType
    value: tuple[Item, ...] | int | bool | str | bytes

    def __repr__(self) -> str:
        # Byte strings may be key material: never shown.
        shown = f"<{len(self.value)} bytes>" if isinstance(self.value, bytes) else self.value
        return f"Item(0x{self.tag:06X}, {self.type.name}, {shown!r})"

    # -- navigation (structures) ----------------------------------------------------------

    @property
    def items(self) -> tuple[Item, ...]:
        """The items of a Structure (raises :class:`TtlvError` for other types)."""
        if not isinstance(self.value, tuple):
            raise TtlvError(f"item 0x{self.tag:06X} is not a structure")
        return self.value

    def find(self, tag: int) -> Item | None:
        """The first child with ``tag``, or ``None``."""
        for child in self.items:
            if child.tag == tag:
                return child
        return None

    def find_all(self, tag: int) -> Iterator[Item]:
        """Every child with ``tag``, in order."""
        return (child for child in self.items if child.tag == tag)


# -- constructors ---------------------------------------------------------------------------


def structure(tag: int, *children: Item | None) -> Item:
    """A Structure of the given children (``None`` children are left out)."""
    return Item(tag, ItemType.STRUCTURE, tuple(c for c in children if c is not None))


def integer(tag: int, value: int) -> Item:
    """A 32-bit signed Integer."""
    return Item(tag, ItemType.INTEGER, value)


def enumeration(tag: int, value: int) -> Item:
    """A 32-bit unsigned Enumeration."""
    return Item(tag, ItemType.ENUMERATION, int(value))


def boolean(tag: int, value: bool) -> Item:
    """A Boolean."""
    return Item(tag, ItemType.BOOLEAN, value)


def text(tag: int, value: str) -> Item:
    """A UTF-8 Text String."""
    return Item(tag, ItemType.TEXT_STRING, value)


def byte_string(tag: int, value: bytes) -> Item:
    """A Byte String."""
    return Item(tag, ItemType.BYTE_STRING, value)


def date_time(tag: int, seconds: int) -> Item:
    """A Date-Time (POSIX seconds)."""
    return Item(tag, ItemType.DATE_TIME, int(seconds))


def long_integer(tag: int, value: int) -> Item:
    """A 64-bit signed Long Integer."""
    return Item(tag, ItemType.LONG_INTEGER, value)


# -- encoding -------------------------------------------------------------------------------

_FIXED = {
    ItemType.INTEGER: ">i",
    ItemType.ENUMERATION: ">I",
    ItemType.INTERVAL: ">I",
    ItemType.LONG_INTEGER: ">q",
    ItemType.DATE_TIME: ">q",
    ItemType.DATE_TIME_EXTENDED: ">q",
}


def _pad(n: int) -> int:
    return (8 - n % 8) % 8


def _big_integer_bytes(value: int) -> bytes:
    length = max(8, (value.bit_length() + 8 + 63) // 64 * 8)  # sign bit, multiple of 8
    return value.to_bytes(length, "big", signed=True)


_HEAD = struct.Struct(">II")
_PACKERS = {kind: struct.Struct(fmt) for kind, fmt in _FIXED.items()}
_ZEROS = bytes(8)


def _encode_into(item: Item, out: bytearray) -> None:
    kind = item.type
    value = item.value
    head = item.tag << 8 | kind
    if kind is ItemType.STRUCTURE:
        assert isinstance(value, tuple)
        start = len(out)
        out += _ZEROS
        for child in value:
            _encode_into(child, out)
        _HEAD.pack_into(out, start, head, len(out) - start - HEADER_BYTES)
        return
    packer = _PACKERS.get(kind)
    if packer is not None:
        assert isinstance(value, int)
        out += _HEAD.pack(head, packer.size)
        out += packer.pack(value)
        out += _ZEROS[: _pad(packer.size)]
        return
    if kind is ItemType.BOOLEAN:
        body = b"\0\0\0\0\0\0\0\1" if value else _ZEROS
    elif kind is ItemType.BIG_INTEGER:
        assert isinstance(value, int)
        body = _big_integer_bytes(value)
    elif kind is ItemType.TEXT_STRING:
        assert isinstance(value, str)
        body = value.encode("utf-8")
    else:
        assert isinstance(value, bytes)
        body = value
    out += _HEAD.pack(head, len(body))
    out += body
    out += _ZEROS[: _pad(len(body))]


def encode(item: Item) -> bytes:
    """The TTLV bytes of ``item`` (and its children)."""
    out = bytearray()
    _encode_into(item, out)
    return bytes(out)


# -- decoding -------------------------------------------------------------------------------

_LENGTHS = {
    ItemType.INTEGER: 4,
    ItemType.ENUMERATION: 4,
    ItemType.INTERVAL: 4,
    ItemType.LONG_INTEGER: 8,
    ItemType.DATE_TIME: 8,
    ItemType.DATE_TIME_EXTENDED: 8,
    ItemType.BOOLEAN: 8,
}


_TYPES = {int(t): t for t in ItemType}
"""Type byte -> ItemType (a dict lookup; calling the enum costs more than the rest)."""


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.count = 0

    def item(self, pos: int, end: int, depth: int) -> tuple[Item, int]:
        if end - pos < HEADER_BYTES:
            raise TtlvError(f"truncated item header at offset {pos}")
        self.count += 1
        if self.count > MAX_ITEMS:
            raise TtlvError(f"more than {MAX_ITEMS} items")
        head, length = struct.unpack_from(">II", self.data, pos)
        tag, raw_type = head >> 8, head & 0xFF
        if tag >> 16 not in (0x42, 0x54):  # KMIP tags and the extension range
            raise TtlvError(f"invalid tag 0x{tag:06X} at offset {pos}")
        kind = _TYPES.get(raw_type)
        if kind is None:
            raise TtlvError(f"unknown item type 0x{raw_type:02X} at offset {pos}")
        pos += HEADER_BYTES
        padded = length + (0 if kind is ItemType.STRUCTURE else _pad(length))
        if padded > end - pos:
            raise TtlvError(f"item 0x{tag:06X} at offset {pos - 8} runs past its container")
        value_end = pos + length
        if padded != length and any(self.data[value_end : pos + padded]):
            raise TtlvError(f"non-zero padding after item 0x{tag:06X}")
        value: tuple[Item, ...] | int | bool | str | bytes
        if kind is ItemType.STRUCTURE:
            if depth >= MAX_DEPTH:
                raise TtlvError(f"structures nested deeper than {MAX_DEPTH}")
            children = []
            cursor = pos
            while cursor < value_end:
                child, cursor = self.item(cursor, value_end, depth + 1)
                children.append(child)
            value = tuple(children)
        elif kind in _LENGTHS:
            if length != _LENGTHS[kind]:
                raise TtlvError(f"{kind.name} 0x{tag:06X} has length {length}")
            if kind is ItemType.BOOLEAN:
                raw = struct.unpack_from(">Q", self.data, pos)[0]
                if raw > 1:
                    raise TtlvError(f"boolean 0x{tag:06X} is neither 0 nor 1")
                value = raw == 1
            else:
                value = struct.unpack_from(_FIXED[kind], self.data, pos)[0]
        elif kind is ItemType.BIG_INTEGER:
            if length == 0 or length % 8:
                raise TtlvError(f"big integer 0x{tag:06X} has length {length}")
            value = int.from_bytes(self.data[pos:value_end], "big", signed=True)
        elif kind is ItemType.TEXT_STRING:
            try:
                value = str(self.data[pos:value_end], "utf-8")
            except UnicodeDecodeError:
                raise TtlvError(f"text string 0x{tag:06X} is not UTF-8") from None
        else:
            value = bytes(self.data[pos:value_end])
        return Item(tag, kind, value), pos + padded


def decode(data: bytes) -> Item:
    """Parse ``data`` as exactly one TTLV item; raise :class:`TtlvError` if it is not."""
    item, end = _Decoder(data).item(0, len(data), 0)
    if end != len(data):
        raise TtlvError(f"{len(data) - end} bytes after the item")
    return item


def message_length(header: bytes) -> int:
    """The total length of the message whose first 8 bytes are ``header``.

    Servers read 8 bytes, then this many minus 8 more; the caller bounds the result.
    """
    if len(header) != HEADER_BYTES:
        raise TtlvError("a message header is 8 bytes")
    head, length = struct.unpack(">II", header)
    if head & 0xFF != ItemType.STRUCTURE:
        raise TtlvError("a KMIP message is a structure")
    return HEADER_BYTES + int(length)


def utc(seconds: int) -> datetime.datetime:
    """A Date-Time value as an aware datetime (for display)."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
