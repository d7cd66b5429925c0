from hypothesis import given
from hypothesis import strategies as st

from strongroom.store.keyrange import prefix_end

EDGES = st.sampled_from(["a", "\x00", "\x7f", "\u00ff", "\ud7ff", "\ue000", "\uffff", "\U0010ffff"])
TEXT = st.text(EDGES | st.characters(exclude_categories=["Cs"]), max_size=5)


def test_prefix_end_examples() -> None:
    assert prefix_end("") is None
    assert prefix_end("\U0010ffff\U0010ffff") is None
    assert prefix_end("ab") == "ac"
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\ud7ff") == "\ue000"


@given(prefix=TEXT, name=TEXT)
def test_starts_with_is_exactly_the_half_open_range(prefix: str, name: str) -> None:
    end = prefix_end(prefix)
    in_range = prefix <= name and (end is None or name < end)
    assert in_range == name.startswith(prefix)
    # Byte order of UTF-8 agrees with code-point order, which both databases use.
    assert (prefix.encode() <= name.encode()) == (prefix <= name)


@given(prefix=TEXT, suffix=TEXT)
def test_names_with_the_prefix_sort_below_the_end(prefix: str, suffix: str) -> None:
    end = prefix_end(prefix)
    assert end is None or prefix + suffix < end
