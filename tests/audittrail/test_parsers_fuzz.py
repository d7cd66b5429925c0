"""Checkpoint lines and audit rows from anywhere: refused with one error type, never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.kms.audit_checkpoint import Checkpoint, CheckpointInvalid, parse_checkpoint_line
from strongroom.ports.audit_chain import AuditChain, MalformedAuditRecord, record_from_row

CHAIN = AuditChain(bytes(range(32)), 7)
GOOD = Checkpoint(41, bytes(32), 7, 1765000000).signed_line(CHAIN)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.text(max_size=300))
def test_any_text_is_a_checkpoint_or_refused(line: str) -> None:
    with contextlib.suppress(CheckpointInvalid):
        parse_checkpoint_line(line, CHAIN)


@given(st.sampled_from(["head", "keyedFrom", "seq", "time", "v"]), json_values)
def test_any_changed_field_is_refused(field: str, value: Any) -> None:
    document = json.loads(GOOD)
    if document["auditCheckpoint"][field] == value:
        return
    document["auditCheckpoint"][field] = value
    with pytest.raises(CheckpointInvalid):
        parse_checkpoint_line(json.dumps(document), CHAIN)


cells = st.none() | st.integers() | st.booleans() | st.text(max_size=40) | st.binary(max_size=40)


@given(st.lists(cells, min_size=0, max_size=6))
def test_any_row_is_a_record_or_named_malformed(row: list[Any]) -> None:
    try:
        record = record_from_row(row, 9)
    except MalformedAuditRecord as exc:
        assert exc.seq >= 1 or isinstance(row[0], int)
    else:
        assert len(record.hash) == len(record.prev_hash) == 32


@given(
    st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=0, max_value=8),
    st.lists(st.binary(max_size=40), max_size=8),
)
def test_a_batch_links_as_event_by_event(
    key: bytes | None, keyed_from: int, seq: int, bodies: list[bytes]
) -> None:
    chain = AuditChain(key, keyed_from)
    prev, expected = bytes(32), []
    for offset, body in enumerate(bodies, start=1):
        prev = chain.link(prev, seq + offset, body)
        expected.append(prev)
    assert chain.links(bytes(32), seq, bodies) == expected
