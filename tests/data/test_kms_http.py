"""KmsHttpDataKeys against a real ``strongroom server`` over HTTPS, and the error mapping."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom import errors
from strongroom.awsjson.error_types import error_classes, error_for_aws_type
from strongroom.data import DataKeyProvider, decrypt_stream, encrypt_stream
from strongroom.data.cache import CachingDataKeys
from strongroom.data.kms_http import KmsHttpDataKeys, is_aws_endpoint
from strongroom.data.objects import ObjectStore
from strongroom.data.objects_memory import MemoryBackend
from strongroom.testing.server import ServerInfo, client_for, free_port, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    with run_server(tmp_path_factory.mktemp("kms-http") / "data") as info:
        yield info


@pytest.fixture(scope="module")
def admin_kms(server: ServerInfo) -> Iterator[Any]:
    client = client_for(server)
    yield client
    client.close()


def session_for(creds: dict[str, Any], secret: str | None = None) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=secret or creds["SecretAccessKey"],
        region_name=creds["Region"],
    )


@pytest.fixture
def keys(server: ServerInfo) -> Iterator[KmsHttpDataKeys]:
    made = KmsHttpDataKeys.connect(
        endpoint_url=server.endpoint_url,
        ca_bundle=str(server.ca_bundle),
        session=session_for(server.credentials),
        retries={"total_max_attempts": 1},
    )
    yield made
    made.close()


@pytest.fixture(scope="module")
def key_arn(admin_kms: Any) -> str:
    return str(admin_kms.create_key()["KeyMetadata"]["Arn"])


def test_generate_and_decrypt_round_trip(keys: KmsHttpDataKeys, key_arn: str) -> None:
    assert isinstance(keys, DataKeyProvider)
    made = keys.generate_data_key(key_arn, {"purpose": "test"})
    assert made.key_arn == key_arn and len(made.plaintext) == 32
    assert keys.decrypt_data_key(made.wrapped, {"purpose": "test"}) == made.plaintext
    assert keys.decrypt_data_key(made.wrapped, {"purpose": "test"}, key_arn) == made.plaintext
    assert "127.0.0.1" in repr(keys) and made.plaintext.hex() not in repr(keys)


def test_service_errors_come_back_typed(
    keys: KmsHttpDataKeys, key_arn: str, admin_kms: Any
) -> None:
    made = keys.generate_data_key(key_arn, {"purpose": "test"})
    with pytest.raises(errors.InvalidCiphertextError):
        keys.decrypt_data_key(made.wrapped, {"purpose": "other"})
    other = admin_kms.create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(errors.IncorrectKeyError):
        keys.decrypt_data_key(made.wrapped, {"purpose": "test"}, other)
    missing = key_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(errors.NotFoundError):
        keys.generate_data_key(missing, None)
    admin_kms.disable_key(KeyId=other)
    with pytest.raises(errors.DisabledError):
        keys.generate_data_key(other, None)
    with pytest.raises(errors.ValidationError):
        keys.generate_data_key("", None)


def test_bad_credentials_and_unreachable_endpoints(server: ServerInfo, key_arn: str) -> None:
    wrong = KmsHttpDataKeys.connect(
        endpoint_url=server.endpoint_url,
        ca_bundle=str(server.ca_bundle),
        session=session_for(server.credentials, secret="x" * 40),
    )
    with pytest.raises(errors.AuthError) as caught:
        wrong.generate_data_key(key_arn, None)
    assert caught.value.aws_type == "InvalidSignatureException"
    nobody = KmsHttpDataKeys.connect(
        endpoint_url=f"https://127.0.0.1:{free_port()}",
        session=session_for(server.credentials),
        retries={"total_max_attempts": 1},
        connect_timeout=2,
    )
    with pytest.raises(errors.DependencyTimeoutError):
        nobody.generate_data_key(key_arn, None)
    untrusted = KmsHttpDataKeys.connect(
        endpoint_url=server.endpoint_url,
        session=session_for(server.credentials),
        retries={"total_max_attempts": 1},
    )
    with pytest.raises(errors.DependencyTimeoutError, match=r"(?i)certificate"):
        untrusted.generate_data_key(key_arn, None)


def test_the_standard_aws_environment_is_honoured(
    server: ServerInfo, key_arn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    creds = server.credentials
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", creds["Region"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", server.endpoint_url)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(server.ca_bundle))
    keys = KmsHttpDataKeys.connect()
    assert keys.endpoint_url == server.endpoint_url
    made = keys.generate_data_key(key_arn, None)
    assert keys.decrypt_data_key(made.wrapped, None) == made.plaintext
    assert keys.account_id() == creds["AccountId"]  # STS at the same endpoint
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(errors.AuthError, match="No AWS credentials"):
        KmsHttpDataKeys.connect().generate_data_key(key_arn, None)


def test_streams_and_objects_over_http(keys: KmsHttpDataKeys, key_arn: str) -> None:
    out = io.BytesIO()
    header = encrypt_stream(
        io.BytesIO(b"over https" * 1000), out, keys, key_id=key_arn, context={"a": "b"}
    )
    assert header.key_id == key_arn
    sink = io.BytesIO()
    decrypt_stream(io.BytesIO(out.getvalue()), sink, keys, context={"a": "b"})
    assert sink.getvalue() == b"over https" * 1000
    store = ObjectStore(
        MemoryBackend(), CachingDataKeys(keys), tenant=keys.account_id(), key_id=key_arn
    )
    for i in range(20):
        store.put(f"o{i}", b"%d" % i)
    assert [store.get(f"o{i}") for i in range(20)] == [b"%d" % i for i in range(20)]


def test_error_table_covers_every_class_of_errors_py() -> None:
    table = error_classes()
    assert table["ValidationException"] is errors.ValidationError
    assert table["KMSInternalException"] is errors.KMSInternalError
    for cls in table.values():
        assert cls.aws_type in table and table[cls.aws_type].aws_type == cls.aws_type
    leaves = {
        c.aws_type
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.StrongroomError) and not c.__subclasses__()
    }
    assert leaves - {"ValidationException"} <= set(table)
    for aws_type, cls in table.items():
        made = error_for_aws_type(aws_type, "msg", cls.http_status)
        assert type(made) is cls and made.aws_type == aws_type and str(made) == "msg"


def test_error_for_aws_type_for_auth_and_unknown_types() -> None:
    auth = error_for_aws_type("UnrecognizedClientException", "who?", 400)
    assert isinstance(auth, errors.AuthError) and auth.aws_type == "UnrecognizedClientException"
    throttled = error_for_aws_type("ThrottlingException", "slow down", 400)
    assert isinstance(throttled, errors.ProtocolError)
    assert (throttled.aws_type, throttled.http_status) == ("ThrottlingException", 400)
    assert isinstance(error_for_aws_type("ServiceUnavailable", "", 503), errors.InternalError)


def test_aws_endpoints_are_recognised() -> None:
    assert is_aws_endpoint("https://kms.eu-west-1.amazonaws.com")
    assert is_aws_endpoint("https://kms-fips.us-east-1.amazonaws.com/")
    assert not is_aws_endpoint("https://127.0.0.1:8443")
    assert not is_aws_endpoint("https://amazonaws.com.example.org")
