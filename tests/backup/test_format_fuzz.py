"""Property tests of the pure format code: parsers fail only with CorruptError, round trips
hold, and any flipped byte of a pack or sealed object is caught."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.backup.config import KeyFile, RepoConfig
from strongroom.backup.errors import CorruptError
from strongroom.backup.index import decode_index, encode_index
from strongroom.backup.keyring import IndexKeys, Purpose, SessionKey
from strongroom.backup.pack import (
    COMP_NONE,
    TYPE_DATA,
    PackBuilder,
    PackPrefix,
    open_blob,
    pack_digest,
    read_header,
)
from strongroom.backup.sealed import KIND_INDEX, KIND_SNAPSHOT, seal, unseal
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.tree import Node, decode_tree, encode_tree

REPO = bytes(range(16))
KEY = SessionKey.derive(REPO, b"\x01" * 16, Purpose.DATA, bytes(32))
INDEX_KEYS = IndexKeys.derive(REPO, b"\x02" * 16, b"\x03" * 32)


def read_pack(data: bytes, name: str) -> list[bytes]:
    """Everything check --read-data does with one pack."""
    entries = read_header(KEY, data)
    if pack_digest(data, entries) != name:
        raise CorruptError("name")
    prefix = PackPrefix.parse(data)
    aead = prefix.aead(KEY)
    return [open_blob(KEY, prefix, aead, e, data[e.offset : e.offset + e.length]) for e in entries]


def build(blobs: list[bytes]) -> tuple[str, bytes]:
    builder = PackBuilder(KEY)
    for blob in blobs:
        builder.add(TYPE_DATA, COMP_NONE, hashlib.sha256(blob).digest(), len(blob), blob)
    return builder.finish(padding=len(blobs) * 5)  # fixed: hypothesis needs steady sizes


@given(st.lists(st.binary(max_size=300), max_size=5))
def test_pack_round_trip(blobs: list[bytes]) -> None:
    name, data = build(blobs)
    assert read_pack(data, name) == blobs


@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=3), st.data())
def test_any_flipped_pack_byte_is_caught(blobs: list[bytes], data: st.DataObject) -> None:
    name, pack = build(blobs)
    at = data.draw(st.integers(0, len(pack) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(pack)
    bad[at] ^= 1 << bit
    with pytest.raises(CorruptError):
        read_pack(bytes(bad), name)


@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=3), st.data())
def test_truncated_or_extended_packs_are_caught(blobs: list[bytes], data: st.DataObject) -> None:
    name, pack = build(blobs)
    cut = data.draw(st.integers(0, len(pack) - 1))
    for bad in (pack[:cut], pack + data.draw(st.binary(min_size=1, max_size=20))):
        with pytest.raises(CorruptError):
            read_pack(bad, name)


@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_parsers(blob: bytes) -> None:
    parsers: list[Callable[[], object]] = [
        lambda: read_header(KEY, blob),
        lambda: decode_index(blob),
        lambda: decode_tree(blob),
        lambda: Snapshot.decode(blob, "x"),
        lambda: RepoConfig.parse_unverified(blob),
        lambda: KeyFile.decode(blob),
        lambda: unseal(KEY, KIND_SNAPSHOT, blob),
    ]
    for parse in parsers:
        with contextlib.suppress(CorruptError):
            parse()


@given(st.binary(max_size=500), st.data())
def test_sealed_objects_round_trip_and_catch_flips(body: bytes, data: st.DataObject) -> None:
    sealed = seal(KEY, KIND_SNAPSHOT, body)
    assert unseal(KEY, KIND_SNAPSHOT, sealed) == body
    at = data.draw(st.integers(0, len(sealed) - 1))
    bad = bytearray(sealed)
    bad[at] ^= 0x80
    with pytest.raises(CorruptError):
        unseal(KEY, KIND_SNAPSHOT, bytes(bad))
    with pytest.raises(CorruptError):  # the same object is no index, nor under another key
        unseal(KEY, KIND_INDEX, sealed)
    with pytest.raises(CorruptError):
        unseal(INDEX_KEYS.session, KIND_SNAPSHOT, sealed)


def test_another_repository_cannot_open_a_pack() -> None:
    _name, pack = build([b"x" * 10])
    other = SessionKey.derive(bytes(16), b"\x01" * 16, Purpose.DATA, bytes(32))
    with pytest.raises(CorruptError):
        read_header(other, pack)


names = st.text(min_size=1, max_size=20).filter(
    lambda s: s not in (".", "..") and "/" not in s and "\0" not in s
)
ids = st.binary(min_size=32, max_size=32)


@given(
    st.dictionaries(
        names,
        st.tuples(
            st.integers(0, 2**40),
            st.lists(st.one_of(ids, st.integers(1, 2**30)), max_size=4),
            st.one_of(st.just(0), st.integers(2, 2**32)),  # a hard link's count, or none
            st.integers(0, 2**64 - 1),
            st.dictionaries(names, st.binary(max_size=40), max_size=3),  # extended attributes
        ),
        max_size=5,
    )
)
def test_trees_round_trip(
    spec: dict[str, tuple[int, list[bytes | int], int, int, dict[str, bytes]]],
) -> None:
    nodes = [
        Node(n, "file", 0o600, 1, 2, "u", "g", t, 9, list(c)) for n, (t, c, *_) in spec.items()
    ]
    for node, (_, _, links, inode, xattrs) in zip(nodes, spec.values(), strict=True):
        node.links, node.inode, node.device = links, inode if links else 0, 7 if links else 0
        node.xattrs = xattrs
    encoded = encode_tree(nodes)
    assert json.loads(encoded)["v"] == (2 if any(n.links or n.xattrs for n in nodes) else 1)
    assert [n.to_json() for n in decode_tree(encoded)] == [
        n.to_json() for n in sorted(nodes, key=lambda n: n.name)
    ]


def test_index_round_trip() -> None:
    name, pack = build([b"a", b"bb"])
    entries = read_header(KEY, pack)
    assert decode_index(encode_index({name: entries})) == {name: entries}
