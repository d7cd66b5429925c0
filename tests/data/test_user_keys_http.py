"""HttpUserKeys and HttpUserDataKeys against a real ``strongroom server`` over HTTPS."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom import errors
from strongroom.data import DataKeyProvider, HttpUserDataKeys, HttpUserKeys
from strongroom.data.objects import ObjectStore
from strongroom.data.objects_memory import MemoryBackend
from strongroom.data.user_keys_http import MAX_BATCH_BYTES, MAX_USER_IDS, id_batches
from strongroom.testing.server import ServerInfo, client_for, free_port


@pytest.fixture(scope="module")
def key_arn(kms_server: ServerInfo, kms_key_arn: str) -> str:
    """The module's key, also named alias/people."""
    kms = client_for(kms_server)
    try:
        kms.create_alias(AliasName="alias/people", TargetKeyId=kms_key_arn)
        return kms_key_arn
    finally:
        kms.close()


def session_for(creds: dict[str, Any]) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        region_name=creds["Region"],
    )


@pytest.fixture
def users(kms_server: ServerInfo) -> Iterator[HttpUserKeys]:
    made = HttpUserKeys.connect(
        endpoint_url=kms_server.endpoint_url,
        ca_bundle=str(kms_server.ca_bundle),
        session=session_for(kms_server.credentials),
    )
    yield made
    made.close()


def test_operations_and_shred(users: HttpUserKeys, key_arn: str) -> None:
    assert users.create_user_keys("alias/people", ["ann", "bob", "ann"]) == 2
    assert users.count_user_keys(key_arn) == 2
    blob = users.encrypt_for_user("alias/people", "ann", b"ann's secret", {"k": "v"})
    assert users.decrypt(blob, {"k": "v"}) == b"ann's secret"
    data_key = users.generate_user_data_key(key_arn, "bob")
    assert data_key.key_arn == key_arn and len(data_key.plaintext) == 32
    assert users.decrypt(data_key.wrapped) == data_key.plaintext
    assert len(users.generate_user_data_key(key_arn, "bob", number_of_bytes=5).plaintext) == 5

    assert users.user_key_exists(key_arn, "ann") is True
    assert users.destroy_user_key(key_arn, "ann") is True
    assert users.destroy_user_key(key_arn, "ann") is False
    assert users.user_key_exists(key_arn, "ann") is False
    with pytest.raises(errors.InvalidCiphertextError):
        users.decrypt(blob, {"k": "v"})
    assert users.decrypt(data_key.wrapped) == data_key.plaintext  # bob is unaffected


def test_errors_are_strongroom_errors(users: HttpUserKeys, key_arn: str) -> None:
    with pytest.raises(errors.NotFoundError):
        users.count_user_keys("alias/nothing-here")
    with pytest.raises(errors.ValidationError, match="4096"):
        users.encrypt_for_user(key_arn, "ann", b"x" * 4097)
    with pytest.raises(errors.ValidationError, match="without NUL"):
        users.create_user_keys(key_arn, ["a\x00"])
    with pytest.raises(errors.ProtocolError) as caught:
        users.call("NoSuchOperation", {"KeyId": key_arn})
    assert caught.value.aws_type == "UnknownOperationException"


def test_batches_of_many_ids(users: HttpUserKeys, key_arn: str) -> None:
    ids = [f"many-{i:05d}" for i in range(MAX_USER_IDS + 5)]
    assert len(list(id_batches(ids))) == 2
    assert users.create_user_keys(key_arn, ids) == len(ids)
    assert users.create_user_keys(key_arn, ids[-10:]) == 0


@given(st.lists(st.text(min_size=1, max_size=300), max_size=40))
def test_id_batches_keep_order_and_limits(ids: list[str]) -> None:
    batches = list(id_batches(ids))
    assert [i for batch in batches for i in batch] == ids
    for batch in batches:
        assert 1 <= len(batch) <= MAX_USER_IDS
        assert len(batch) == 1 or len(json.dumps(batch)) <= MAX_BATCH_BYTES


def test_per_user_objects(users: HttpUserKeys, key_arn: str, kms_server: ServerInfo) -> None:
    backend = MemoryBackend()
    tenant = kms_server.credentials["AccountId"]
    carol, dave = users.for_user("carol"), users.for_user("dave")
    assert isinstance(carol, DataKeyProvider)
    ObjectStore(backend, carol, tenant=tenant, key_id=key_arn).put("carol/cv", io.BytesIO(b"C"))
    ObjectStore(backend, dave, tenant=tenant, key_id=key_arn).put("dave/cv", io.BytesIO(b"D"))
    as_carol = ObjectStore(backend, carol, tenant=tenant)
    with as_carol.open("carol/cv") as reader:
        assert reader.read() == b"C"
    with (
        pytest.raises(errors.InvalidCiphertextError, match="not sealed under this user"),
        as_carol.open("dave/cv") as reader,
    ):
        reader.read()

    users.destroy_user_key(key_arn, "carol")
    with (
        pytest.raises(errors.InvalidCiphertextError, match="destroyed"),
        as_carol.open("carol/cv") as reader,
    ):
        reader.read()
    with ObjectStore(backend, dave, tenant=tenant).open("dave/cv") as reader:
        assert reader.read() == b"D"


def test_connect_from_the_environment(
    kms_server: ServerInfo, key_arn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    creds = kms_server.credentials
    none = tmp_path / "none"
    for name, value in {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_DEFAULT_REGION": creds["Region"],
        "AWS_ENDPOINT_URL_KMS": kms_server.endpoint_url,
        "AWS_CA_BUNDLE": str(kms_server.ca_bundle),
        "AWS_CONFIG_FILE": str(none),
        "AWS_SHARED_CREDENTIALS_FILE": str(none),
    }.items():
        monkeypatch.setenv(name, value)
    users = HttpUserKeys.connect()
    try:
        assert users.kms.endpoint_url == kms_server.endpoint_url
        assert users.count_user_keys(key_arn) >= 0
        assert repr(users) == f"HttpUserKeys(endpoint_url={kms_server.endpoint_url!r})"
    finally:
        users.close()


def test_no_credentials_and_no_server(
    kms_server: ServerInfo, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    none = tmp_path / "none"
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(none))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(none))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(errors.AuthError) as caught:
        HttpUserKeys.connect(endpoint_url=kms_server.endpoint_url, region="us-east-1")
    assert caught.value.aws_type == "MissingAuthenticationTokenException"

    dead = HttpUserKeys.connect(
        endpoint_url=f"https://127.0.0.1:{free_port()}",
        ca_bundle=str(kms_server.ca_bundle),
        session=session_for(kms_server.credentials),
    )
    try:
        with pytest.raises(errors.DependencyTimeoutError, match="Cannot reach"):
            dead.count_user_keys("alias/people")
    finally:
        dead.close()


def test_user_data_keys_need_a_user_id(users: HttpUserKeys) -> None:
    with pytest.raises(errors.ValidationError):
        HttpUserDataKeys(users, "")
    assert repr(users.for_user("erin")) == "HttpUserDataKeys(user_id='erin')"
