"""HeaderCache.parse always answers what parse_header answers for the same bytes."""

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.blob import (
    BlobHeader,
    BlobKind,
    HeaderCache,
    InvalidBlob,
    parse_header,
    seal,
)
from strongroom.crypto.hazmat import new_key

KEY = new_key()
SEEDS = [
    seal(KEY, "t", BlobHeader("1234abcd-12ab-34cd-56ef-1234567890ab", 7), b"x" * 5),
    seal(KEY, "t", BlobHeader("k" * 64, 0xFFFFFFFF), b""),
    seal(KEY, "t", BlobHeader("a", 1, BlobKind.USER_KEY, "u-1"), b""),
]


def outcome(parse: object, blob: bytes) -> object:
    try:
        return parse(blob)  # type: ignore[operator]
    except InvalidBlob:
        return "invalid"


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(SEEDS),
            st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=3),
            st.none() | st.integers(0, 120),
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 3),
)
def test_cache_agrees_with_parse_header(
    cases: list[tuple[bytes, list[tuple[int, int]], int | None]], max_entries: int
) -> None:
    cache = HeaderCache(max_entries)
    for seed, changes, cut in cases + cases:  # every blob again once its header is known
        blob = bytearray(seed)
        for index, value in changes:
            if index < len(blob):
                blob[index] = value
        data = bytes(blob if cut is None else blob[:cut])
        assert outcome(cache.parse, data) == outcome(parse_header, data)


def test_a_known_header_with_too_short_a_tail_is_refused() -> None:
    cache = HeaderCache()
    for seed in SEEDS:
        cache.parse(seed)
        for size in range(len(seed) + 1):
            assert outcome(cache.parse, seed[:size]) == outcome(parse_header, seed[:size])


def test_bytearrays_are_parsed_not_looked_up() -> None:
    cache = HeaderCache()
    assert cache.parse(bytearray(SEEDS[0])) == parse_header(SEEDS[0])  # type: ignore[arg-type]
    assert cache.parse(SEEDS[0]) == cache.parse(SEEDS[0]) == parse_header(SEEDS[0])
    assert "entries=1" in repr(cache)
