"""Reading LUKS2 headers in Python, checked against cryptsetup on image files it made."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.errors import ValidationError
from strongroom.testing.luks import cryptsetup_missing, luks_image, run
from strongroom.volume.header import Luks2Header, parse_header, read_header

pytestmark = pytest.mark.skipif(
    cryptsetup_missing(), reason="cryptsetup is not installed (scripts/test.sh installs it)"
)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = luks_image(tmp_path_factory.mktemp("hdr") / "h.img", b"pw", "--label", "data")
    for slot in ("0", "0"):
        run(
            ["cryptsetup", "token", "import", "--json-file", "-", str(path)],
            stdin=json.dumps({"type": "test", "keyslots": [slot], "n": "ü"}).encode(),
        )
    return path


def reader(data: bytes) -> Callable[[int, int], bytes]:
    return lambda offset, size: data[offset : offset + size]


def test_matches_cryptsetup(image: Path) -> None:
    header = read_header(image)
    dumped = json.loads(run(["cryptsetup", "luksDump", "--dump-json-metadata", str(image)]).stdout)
    assert header.metadata == dumped
    assert header.uuid == run(["cryptsetup", "luksUUID", str(image)]).stdout.decode().strip()
    assert header.keyslots == [0] and sorted(header.tokens) == [0, 1]
    assert header.tokens[1]["n"] == "ü" and header.free_keyslot() == 1


def test_a_damaged_copy_is_ignored_and_two_are_an_error(image: Path) -> None:
    data = bytearray(image.read_bytes()[: 1 << 20])
    good = parse_header(reader(bytes(data)), "x")
    primary = bytearray(data)
    primary[5000] ^= 1  # inside the primary's JSON area
    assert parse_header(reader(bytes(primary)), "x") == good
    secondary = bytearray(data)
    secondary[good.size + 5000] ^= 1
    assert parse_header(reader(bytes(secondary)), "x") == good
    primary[good.size + 5000] ^= 1
    with pytest.raises(ValidationError, match="damaged"):
        parse_header(reader(bytes(primary)), "x")


def test_the_newer_copy_wins(image: Path, tmp_path: Path) -> None:
    copy = tmp_path / "c.img"
    copy.write_bytes(image.read_bytes())
    old = read_header(copy)
    before = copy.read_bytes()
    run(["cryptsetup", "token", "remove", "--token-id", "1", str(copy)])
    new = read_header(copy)
    assert new.seqid > old.seqid and 1 not in new.tokens
    # an interrupted update: the primary is new, the secondary still old
    mixed = copy.read_bytes()[: old.size] + before[old.size : 2 * old.size]
    assert parse_header(reader(mixed), "x").seqid == new.seqid


def test_not_luks_and_luks1(tmp_path: Path) -> None:
    plain = tmp_path / "p.img"
    plain.write_bytes(os.urandom(64 << 10))
    with pytest.raises(ValidationError, match="not a LUKS device"):
        read_header(plain)
    empty = tmp_path / "e.img"
    empty.write_bytes(b"")
    with pytest.raises(ValidationError, match="not a LUKS device"):
        read_header(empty)
    luks1 = luks_image(tmp_path / "l1.img", b"pw", luks_type="luks1")
    with pytest.raises(ValidationError, match="LUKS1"):
        read_header(luks1)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 40_000), st.integers(1, 255)), max_size=6))
def test_flipped_bytes_give_the_header_or_a_clear_error(
    image: Path, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(image.read_bytes()[: 1 << 16])
    good = parse_header(reader(bytes(data)), "x")
    for offset, mask in flips:
        data[offset] ^= mask
    try:
        found = parse_header(reader(bytes(data)), "x")
    except ValidationError:
        return
    assert isinstance(found, Luks2Header) and found.uuid == good.uuid


@given(st.binary(max_size=5000))
def test_random_bytes_after_the_magic_never_crash(tail: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_header(reader(b"LUKS\xba\xbe" + tail), "x")
