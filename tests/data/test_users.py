"""Per-user encryption: objects under a user key; destroying it shreds only that user."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from strongroom.crypto.stream import parse_header
from strongroom.data import InProcessDataKeys, decrypt_stream, encrypt_stream
from strongroom.data.objects import ObjectStore
from strongroom.data.objects_local import LocalBackend
from strongroom.data.users import UserDataKeys
from strongroom.errors import InvalidCiphertextError, StrongroomError, ValidationError
from strongroom.kms import Caller, KeyService

C = 1 << 16
BODY = b"profile " * (C // 4)  # spans chunks


def stores(
    service: KeyService, caller: Caller, root: Path, key_id: str, *users: str
) -> dict[str, ObjectStore]:
    backend = LocalBackend(root)
    return {
        user: ObjectStore(
            backend,
            UserDataKeys(service, caller, user),
            tenant=caller.tenant,
            key_id=key_id,
            chunk_size=C,
        )
        for user in users
    }


def test_destroyed_user_cannot_be_read_and_the_others_still_can(
    service: KeyService,
    alice: Caller,
    alice_key: str,
    alice_keys: InProcessDataKeys,
    tmp_path: Path,
) -> None:
    by_user = stores(service, alice, tmp_path / "objects", alice_key, "u-1", "u-2", "u-3")
    for user, store in by_user.items():
        store.put(f"{user}/profile", BODY + user.encode(), {"kind": "profile"})
        store.put(f"{user}/avatar", user.encode())
    tenant_wide = ObjectStore(LocalBackend(tmp_path / "objects"), alice_keys, tenant=alice.tenant)
    assert tenant_wide.get("u-1/avatar") == b"u-1"  # an ordinary Decrypt opens them

    assert service.destroy_user_key(alice, alice_key, "u-1") is True

    gone = by_user["u-1"]
    for read in (
        lambda: gone.get("u-1/profile"),
        lambda: gone.get("u-1/avatar"),
        lambda: gone.get_range("u-1/profile", 10, 20),
        lambda: gone.open("u-1/profile"),
        lambda: tenant_wide.get("u-1/avatar"),
    ):
        with pytest.raises(InvalidCiphertextError):
            read()
    with pytest.raises(InvalidCiphertextError, match="destroyed"):
        gone.get("u-1/avatar")
    for user in ("u-2", "u-3"):
        assert by_user[user].get(f"{user}/profile") == BODY + user.encode()
        assert by_user[user].get_range(f"{user}/profile", C - 2, C + 2) == BODY[C - 2 : C + 2]
        assert tenant_wide.get(f"{user}/avatar") == user.encode()

    # the same user id starts afresh with a new key; the shredded objects stay shredded
    gone.put("u-1/new", b"hello again")
    assert gone.get("u-1/new") == b"hello again"
    with pytest.raises(InvalidCiphertextError):
        gone.get("u-1/avatar")


def test_a_user_cannot_open_another_users_objects(
    service: KeyService, alice: Caller, alice_key: str, tmp_path: Path
) -> None:
    by_user = stores(service, alice, tmp_path / "objects", alice_key, "u-1", "u-2")
    by_user["u-1"].put("shared-name", b"u-1's")
    with pytest.raises(InvalidCiphertextError, match="not sealed under this user"):
        by_user["u-2"].get("shared-name")


def test_user_streams_name_the_key_arn_even_through_an_alias(
    service: KeyService, alice: Caller, alice_key: str
) -> None:
    service.call(alice, "CreateAlias", {"AliasName": "alias/users", "TargetKeyId": alice_key})
    keys = UserDataKeys(service, alice, "u-9")
    out = io.BytesIO()
    header = encrypt_stream(
        io.BytesIO(b"data"), out, keys, key_id="alias/users", context={"a": "b"}
    )
    assert header.key_id == alice_key == parse_header(out.getvalue()).key_id
    sink = io.BytesIO()
    decrypt_stream(io.BytesIO(out.getvalue()), sink, keys, context={"a": "b"})
    assert sink.getvalue() == b"data"
    assert "u-9" in repr(keys) and keys.user_id == "u-9"


def test_other_tenants_and_bad_user_ids_are_refused(
    service: KeyService, alice: Caller, bob: Caller, alice_key: str
) -> None:
    with pytest.raises(StrongroomError):
        UserDataKeys(service, bob, "u-1").generate_data_key(alice_key, None)
    made = UserDataKeys(service, alice, "u-1").generate_data_key(alice_key, None)
    with pytest.raises(StrongroomError):
        UserDataKeys(service, bob, "u-1").decrypt_data_key(made.wrapped, None)
    for bad in ("", "a\x00b", "x" * 300):
        with pytest.raises(ValidationError):
            UserDataKeys(service, alice, bad)
    with pytest.raises(InvalidCiphertextError):  # not a user-key blob at all
        UserDataKeys(service, alice, "u-1").decrypt_data_key(b"\x01junk", None)
