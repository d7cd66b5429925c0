from hypothesis import given
from hypothesis import strategies as st

from strongroom.kms.records import KeyRecord


def _key(tags: dict[str, str]) -> KeyRecord:
    return KeyRecord(
        key_id="k",
        account_id="111122223333",
        region="us-east-1",
        key_spec="SYMMETRIC_DEFAULT",
        key_usage="ENCRYPT_DECRYPT",
        origin="AWS_KMS",
        key_state="Enabled",
        creation_date=1.0,
        tags=tags,
    )


def test_a_tag_named_like_the_bytes_marker_reads_back_as_a_tag() -> None:
    record = _key({"$b64": "AAAA", "$$x": "y"})
    assert KeyRecord.from_bytes(record.to_bytes()).tags == {"$b64": "AAAA", "$$x": "y"}


@given(st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=5))
def test_any_tags_round_trip(tags: dict[str, str]) -> None:
    assert KeyRecord.from_bytes(_key(tags).to_bytes()).tags == tags
