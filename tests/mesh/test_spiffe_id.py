"""SPIFFE ID and trust domain parsing, against the rules of the SPIFFE ID standard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import ValidationError
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain

TD_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.-_"
SEGMENT_CHARS = TD_CHARS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

trust_domains = st.text(TD_CHARS, min_size=1, max_size=40)
segments = st.text(SEGMENT_CHARS, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
paths = st.lists(segments, max_size=5).map(lambda parts: "".join("/" + p for p in parts))


@given(trust_domains, paths)
def test_valid_ids_parse_and_print_back(td: str, path: str) -> None:
    text = f"spiffe://{td}{path}"
    parsed = SpiffeId.parse(text)
    assert str(parsed) == text
    assert parsed.trust_domain == TrustDomain.parse(td) == TrustDomain.parse(f"spiffe://{td}")
    assert parsed.path == path
    assert parsed.member_of(TrustDomain(td))


@given(trust_domains, paths, st.sampled_from("ABCZ:@%?#[] é+=!~"))
def test_a_bad_character_in_the_trust_domain_is_refused(td: str, path: str, bad: str) -> None:
    with pytest.raises(ValidationError):
        SpiffeId.parse(f"spiffe://{td}{bad}{td}{path}")


@given(trust_domains, paths, st.sampled_from(" %?#:@+=!~é\x00"))
def test_a_bad_character_in_the_path_is_refused(td: str, path: str, bad: str) -> None:
    with pytest.raises(ValidationError):
        SpiffeId.parse(f"spiffe://{td}{path}/a{bad}b")


@given(trust_domains, paths)
def test_empty_dot_and_trailing_segments_are_refused(td: str, path: str) -> None:
    for tail in ("/", "//x", "/.", "/..", "/./x", "/../x"):
        with pytest.raises(ValidationError):
            SpiffeId.parse(f"spiffe://{td}{path}{tail}")


@given(st.text(max_size=60))
def test_anything_either_parses_to_itself_or_is_a_validation_error(text: str) -> None:
    try:
        parsed = SpiffeId.parse(text)
    except ValidationError:
        return
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "spiffe://",
        "spiffe:///path",
        "SPIFFE://example.org/a",
        "http://example.org/a",
        "spiffe:example.org/a",
        "spiffe://example.org:443/a",
        "spiffe://user@example.org/a",
        "spiffe://example.org/a?x=1",
        "spiffe://example.org/a#frag",
        "spiffe://example.org/a%20b",
        "spiffe://Example.org/a",
        "spiffe://" + "a" * 256,
        "spiffe://example.org/" + "a" * 2048,
    ],
)
def test_known_bad_ids(text: str) -> None:
    with pytest.raises(ValidationError):
        SpiffeId.parse(text)


def test_trust_domain_forms() -> None:
    assert TrustDomain.parse("example.org").id == SpiffeId.parse("spiffe://example.org")
    with pytest.raises(ValidationError):
        TrustDomain.parse("spiffe://example.org/path")
    assert str(SpiffeId.of("example.org", "/ns/web")) == "spiffe://example.org/ns/web"
    with pytest.raises(ValidationError):
        SpiffeId.of("example.org", "ns/web")
