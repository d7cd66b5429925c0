"""The hot path of Encrypt/Decrypt/GenerateDataKey keeps AWS semantics.

Key and alias records are cached for ``key_record_ttl_s`` (1 s by default) and used only
by those read operations: any write of the same process ends them at once; a change made
by another process is seen within the TTL; a blob under a version rotated in elsewhere
still decrypts at once. Request validation has a compiled fast path that must agree with
the full checker on every request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto import parse_header
from strongroom.errors import (
    AccessDeniedError,
    DisabledError,
    InvalidStateError,
    NotFoundError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.kms.wire_model import WireModel
from strongroom.ports import StoreTx
from strongroom.ports.sealed_store import SealedStore
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller

from .policy_support import deny_decrypt


def create_key(service: KeyService, caller: Caller) -> str:
    key_id: str = service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
    return key_id


def encrypt(service: KeyService, caller: Caller, key: str) -> bytes:
    blob: bytes = service.call(caller, "Encrypt", {"KeyId": key, "Plaintext": b"p"})[
        "CiphertextBlob"
    ]
    return blob


def decrypt(service: KeyService, caller: Caller, blob: bytes) -> bytes:
    plaintext: bytes = service.call(caller, "Decrypt", {"CiphertextBlob": blob})["Plaintext"]
    return plaintext


# -- one process: every change is seen at once ----------------------------------------------


def test_hot_operations_need_no_store_once_warm(
    service: KeyService, alice: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = create_key(service, alice)
    blob = encrypt(service, alice, key)
    decrypt(service, alice, blob)
    inner = service.store.inner  # type: ignore[attr-defined]
    reads: list[object] = []
    real_read = inner.read

    def counted_read(fn: Callable[[StoreTx], object]) -> object:
        reads.append(fn)
        return real_read(fn)

    monkeypatch.setattr(inner, "read", counted_read)
    for _ in range(20):
        assert decrypt(service, alice, blob) == b"p"
        encrypt(service, alice, key)
        service.call(alice, "GenerateDataKey", {"KeyId": key, "NumberOfBytes": 16})
    assert reads == []


def test_disable_and_deletion_take_effect_at_once(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)
    blob = encrypt(service, alice, key)
    assert decrypt(service, alice, blob) == b"p"  # the record is cached now
    service.call(alice, "DisableKey", {"KeyId": key})
    with pytest.raises(DisabledError):
        decrypt(service, alice, blob)
    with pytest.raises(DisabledError):
        service.call(alice, "GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})
    service.call(alice, "EnableKey", {"KeyId": key})
    assert decrypt(service, alice, blob) == b"p"
    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    with pytest.raises(InvalidStateError):
        encrypt(service, alice, key)


def test_alias_changes_take_effect_at_once(service: KeyService, alice: Caller) -> None:
    first, second = create_key(service, alice), create_key(service, alice)
    service.call(alice, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": first})
    assert parse_header(encrypt(service, alice, "alias/app"))[0].key_id == first
    service.call(alice, "UpdateAlias", {"AliasName": "alias/app", "TargetKeyId": second})
    assert parse_header(encrypt(service, alice, "alias/app"))[0].key_id == second
    service.call(alice, "DeleteAlias", {"AliasName": "alias/app"})
    with pytest.raises(NotFoundError):
        encrypt(service, alice, "alias/app")


def test_policy_change_takes_effect_at_once(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)
    blob = encrypt(service, alice, key)
    assert decrypt(service, alice, blob) == b"p"
    deny_decrypt(service, alice, key)
    with pytest.raises(AccessDeniedError):
        decrypt(service, alice, blob)
    assert parse_header(encrypt(service, alice, key))[0].key_id == key


def test_rotation_takes_effect_at_once(service: KeyService, alice: Caller) -> None:
    key = create_key(service, alice)
    assert parse_header(encrypt(service, alice, key))[0].key_version == 1
    service.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    blob = encrypt(service, alice, key)
    assert parse_header(blob)[0].key_version == 2
    assert decrypt(service, alice, blob) == b"p"


# -- two processes over one store: bounded staleness ---------------------------------------------


def test_another_process_sees_a_disable_within_the_ttl(
    two_processes: tuple[KeyService, KeyService, ManualClock],
) -> None:
    first, second, clock = two_processes
    alice = tenant_caller(first, "alice")
    key = create_key(first, alice)
    blob = encrypt(first, alice, key)
    assert decrypt(second, alice, blob) == b"p"  # second caches the record
    first.call(alice, "DisableKey", {"KeyId": key})
    clock.advance(1.0)  # key_record_ttl_s
    with pytest.raises(DisabledError):
        decrypt(second, alice, blob)


def test_a_version_rotated_in_elsewhere_decrypts_at_once(
    two_processes: tuple[KeyService, KeyService, ManualClock],
) -> None:
    first, second, _ = two_processes
    alice = tenant_caller(first, "alice")
    key = create_key(first, alice)
    assert decrypt(second, alice, encrypt(first, alice, key)) == b"p"  # v1 cached in second
    first.call(alice, "RotateKeyOnDemand", {"KeyId": key})
    blob = encrypt(first, alice, key)
    assert parse_header(blob)[0].key_version == 2
    assert decrypt(second, alice, blob) == b"p"
    user_blob = first.encrypt_for_user(alice, key, "user-1", b"u")
    assert decrypt(second, alice, user_blob) == b"u"
    assert decrypt(second, alice, second.encrypt_for_user(alice, key, "user-1", b"v")) == b"v"


def test_the_record_cache_can_be_turned_off(tmp_path: Path, clock: ManualClock) -> None:
    store = SqliteStore(tmp_path / "s.db")
    service = KeyService(
        store, LocalRootOfTrust.create(tmp_path / "m.key"), clock, key_record_ttl_s=0
    )
    try:
        sealed = service.store
        assert isinstance(sealed, SealedStore) and sealed.inner is store  # not watched for writes
        alice = tenant_caller(service, "alice")
        key = create_key(service, alice)
        blob = encrypt(service, alice, key)
        assert decrypt(service, alice, blob) == b"p"
        service.call(alice, "DisableKey", {"KeyId": key})
        with pytest.raises(DisabledError):
            decrypt(service, alice, blob)
    finally:
        service.close()


# -- compiled validation agrees with the full checker -------------------------------------------

_MODEL = WireModel.load()
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100_000),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)


def _shaped(shape_name: str, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that mostly fit ``shape_name`` (some just past a limit), with junk mixed in."""
    shape = _MODEL.shapes[shape_name]
    kind = shape["type"]
    low, high = shape.get("min", 0), shape.get("max")
    top = min(high if high is not None else low + 8, low + 8)
    fitting: st.SearchStrategy[Any]
    if depth > 3:
        return _JUNK
    if kind == "structure":
        members, required = shape.get("members", {}), shape.get("required", [])
        fitting = st.fixed_dictionaries(
            {m: _shaped(members[m]["shape"], depth + 1) for m in required},
            optional={
                m: _shaped(spec["shape"], depth + 1)
                for m, spec in members.items()
                if m not in required
            },
        )
    elif kind == "string" and "enum" in shape:
        fitting = st.sampled_from([*shape["enum"], "NOT_IN_ENUM"])
    elif kind == "string" and "pattern" in shape:
        fitting = st.from_regex(shape["pattern"], fullmatch=True).filter(
            lambda v: len(v) <= top + 1
        )
    elif kind == "string":
        fitting = st.text(min_size=max(low - 1, 0), max_size=top + 1)
    elif kind == "blob":
        fitting = st.binary(min_size=max(low - 1, 0), max_size=top + 1)
    elif kind == "integer":
        fitting = st.integers(low - 1, (high if high is not None else low + 10) + 1)
    elif kind == "list":
        fitting = st.lists(_shaped(shape["member"]["shape"], depth + 1), max_size=3)
    elif kind == "map":
        fitting = st.dictionaries(
            # JSON object keys are hashable: junk lists and dicts cannot be keys.
            _shaped(shape["key"]["shape"], depth + 1).filter(
                lambda k: not isinstance(k, list | dict)
            ),
            _shaped(shape["value"]["shape"], depth + 1),
            max_size=2,
        )
    elif kind == "boolean":
        fitting = st.booleans()
    else:
        fitting = st.floats(allow_nan=False)
    return st.integers(0, 11).flatmap(lambda i: _JUNK if i == 11 else fitting)


_OPERATIONS = sorted(op for op in _MODEL.operations if _MODEL.input_shape(op))


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, Any]:
    operation = draw(st.sampled_from(_OPERATIONS))
    shape = _MODEL.input_shape(operation)
    assert shape is not None
    return operation, draw(_shaped(shape))


@settings(max_examples=400, deadline=None)
@given(_requests())
def test_compiled_validation_agrees_with_the_full_check(case: tuple[str, Any]) -> None:
    operation, request = case
    shape = _MODEL.input_shape(operation)
    assert shape is not None
    problems: list[str] = []
    _MODEL._check_structure(shape, request, "", problems)
    assert _MODEL._checker(shape)(request) == (not problems)
