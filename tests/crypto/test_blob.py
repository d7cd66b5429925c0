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


# -- header encoding -----------------------------------------------------------------------------

KEY_IDS = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64
)
VERSIONS = st.integers(1, 0xFFFFFFFF)
USER_IDS = st.text(min_size=1, max_size=64).filter(lambda u: len(u.encode("utf-8")) <= 256)


@given(KEY_IDS, VERSIONS, st.none() | USER_IDS)
def test_header_round_trips(key_id: str, version: int, user_id: str | None) -> None:
    kind = BlobKind.KEY if user_id is None else BlobKind.USER_KEY
    header = BlobHeader(key_id, version, kind, user_id)
    blob = seal(KEY, "t", header, b"p")
    parsed, offset = parse_header(blob)
    assert parsed == header
    assert blob[:offset] == header.encode()
    assert len(blob) == offset + 16 + 12 + 1 + 16


@pytest.mark.parametrize(
    "header",
    [
        BlobHeader("", 1),
        BlobHeader("k" * 65, 1),
        BlobHeader("clé", 1),
        BlobHeader("k", 0),
        BlobHeader("k", 2**32),
        BlobHeader("k", 1, BlobKind.USER_KEY, None),
        BlobHeader("k", 1, BlobKind.USER_KEY, ""),
        BlobHeader("k", 1, BlobKind.USER_KEY, "é" * 129),
        BlobHeader("k", 1, BlobKind.KEY, "user"),
    ],
    ids=[
        "empty-id",
        "long-id",
        "non-ascii-id",
        "version-0",
        "version-2^32",
        "user-kind-no-user",
        "empty-user",
        "user-257-bytes",
        "key-kind-with-user",
    ],
)
def test_header_refuses_out_of_range_fields(header: BlobHeader) -> None:
    with pytest.raises(ValueError):
        header.encode()
    with pytest.raises(ValueError):
        seal(KEY, "t", header, b"p")


def test_header_limits_are_inclusive() -> None:
    header = BlobHeader("k" * 64, 0xFFFFFFFF, BlobKind.USER_KEY, "é" * 128)
    assert parse_header(seal(KEY, "t", header, b"p"))[0] == header


# -- what is bound into a blob -------------------------------------------------------------------


def _reheader(blob: bytes, header: BlobHeader) -> bytes:
    _, offset = parse_header(blob)
    return header.encode() + blob[offset:]


def test_every_header_field_is_authenticated() -> None:
    blob = seal(KEY, "t", HEADER, b"secret", {"a": "b"})
    for changed in (
        BlobHeader("1234abcd-12ab-34cd-56ef-1234567890ac", 3),
        BlobHeader(HEADER.key_id, 2),
        BlobHeader(HEADER.key_id, 3, BlobKind.USER_KEY, "u"),
    ):
        with pytest.raises(InvalidBlob):
            open_blob(KEY, "t", _reheader(blob, changed), {"a": "b"})
    user = BlobHeader("k", 1, BlobKind.USER_KEY, "alice")
    user_blob = seal(KEY, "t", user, b"x")
    with pytest.raises(InvalidBlob):
        open_blob(KEY, "t", _reheader(user_blob, BlobHeader("k", 1, BlobKind.USER_KEY, "alicf")))
    with pytest.raises(InvalidBlob):
        open_blob(new_key(), "t", blob, {"a": "b"})


def test_tenant_encoding_is_unambiguous() -> None:
    # The tenant is length-prefixed, so no tenant/header boundary can be shifted.
    blob = seal(KEY, "11", HEADER, b"x")
    with pytest.raises(InvalidBlob):
        open_blob(KEY, "1", blob)
    with pytest.raises(InvalidBlob):
        open_blob(KEY, "111", blob)


def test_sealing_is_randomised() -> None:
    first = seal(KEY, "t", HEADER, b"same")
    second = seal(KEY, "t", HEADER, b"same")
    assert first != second
    _, offset = parse_header(first)
    assert first[offset : offset + 28] != second[offset : offset + 28]


def test_every_single_bit_flip_and_truncation_fails() -> None:
    blob = seal(KEY, "t", BlobHeader("k1", 1), b"0123456789", {"c": "d"})
    for index in range(len(blob)):
        for bit in range(8):
            flipped = blob[:index] + bytes([blob[index] ^ (1 << bit)]) + blob[index + 1 :]
            with pytest.raises(InvalidBlob):
                open_blob(KEY, "t", flipped, {"c": "d"})
        with pytest.raises(InvalidBlob):
            open_blob(KEY, "t", blob[:index], {"c": "d"})
    assert open_blob(KEY, "t", blob, {"c": "d"}) == b"0123456789"


@st.composite
def mutations(draw: st.DrawFn, blob: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "splice", "replace", "swap"]))
    n = len(blob)
    if kind == "flip":
        i = draw(st.integers(0, n - 1))
        return blob[:i] + bytes([blob[i] ^ draw(st.integers(1, 255))]) + blob[i + 1 :]
    if kind == "truncate":
        return blob[: draw(st.integers(0, n - 1))]
    if kind == "extend":
        return blob + draw(st.binary(min_size=1, max_size=32))
    if kind == "splice":
        i = draw(st.integers(0, n))
        return blob[:i] + draw(st.binary(min_size=1, max_size=8)) + blob[i:]
    if kind == "replace":
        i = draw(st.integers(0, n - 1))
        j = draw(st.integers(i + 1, n))
        return blob[:i] + draw(st.binary(min_size=j - i, max_size=j - i)) + blob[j:]
    i = draw(st.integers(0, n - 2))
    j = draw(st.integers(i + 1, n - 1))
    return blob[:i] + blob[j : j + 1] + blob[i + 1 : j] + blob[i : i + 1] + blob[j + 1 :]


FUZZ_BLOB = seal(KEY, "t", HEADER, b"fuzzing target", {"k": "v"})
FUZZ_USER_BLOB = seal(KEY, "t", BlobHeader("k", 9, BlobKind.USER_KEY, "u-1"), b"user")


@given(st.one_of(mutations(FUZZ_BLOB), mutations(FUZZ_USER_BLOB)))
def test_mutated_blobs_fail_as_invalid_blob_only(mutated: bytes) -> None:
    try:
        plaintext = open_blob(KEY, "t", mutated, {"k": "v"})
    except InvalidBlob:
        return
    # Only a no-op mutation (a swap of equal bytes, a same-value replace) may open.
    assert mutated in (FUZZ_BLOB,)
    assert plaintext == b"fuzzing target"


@given(st.binary(max_size=400))
def test_parse_header_raises_only_invalid_blob(data: bytes) -> None:
    try:
        header, offset = parse_header(data)
    except InvalidBlob:
        return
    assert data[:offset] == header.encode()
    assert len(data) >= offset + 16 + 12 + 16


@given(st.binary(min_size=3, max_size=120))
def test_plausible_headers_raise_only_invalid_blob(tail: bytes) -> None:
    for prefix in (b"\x01\x01", b"\x01\x02"):
        try:
            open_blob(KEY, "t", prefix + tail)
        except InvalidBlob:
            continue
        raise AssertionError("random bytes opened")


def test_reused_headers_never_stand_in_for_another_kind_or_an_invalid_one() -> None:
    material = bytes(range(32))
    plain = seal(material, "111122223333", BlobHeader("k-reuse", 3), b"x")
    assert parse_header(plain)[0] == BlobHeader("k-reuse", 3)
    user = BlobHeader("k-reuse", 3, BlobKind.USER_KEY, "alice")
    sealed = seal(material, "111122223333", user, b"y")
    assert parse_header(sealed)[0] == user
    with pytest.raises(ValueError):
        seal(material, "111122223333", BlobHeader("k-reuse", 3, user_id="bob"), b"z")
