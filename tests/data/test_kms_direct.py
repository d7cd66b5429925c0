"""``DirectKmsDataKeys``: the botocore-free KMS client of ``encrypt``/``decrypt``."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.data.kms_direct import DirectKmsDataKeys, direct_from_environment, sigv4_headers
from strongroom.errors import AuthError, DependencyTimeoutError, NotFoundError, ValidationError
from strongroom.testing.server import ServerInfo

BODY = b'{"KeyId":"alias/x","KeySpec":"AES_256"}'


@pytest.mark.parametrize("token", [None, "session-token/+="])
def test_signature_is_botocores(token: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    when = datetime.datetime(2026, 12, 5, 23, 59, 58, tzinfo=datetime.UTC)
    ours = sigv4_headers(
        host="127.0.0.1:8443",
        region="eu-west-3",
        access_key_id="AKIAEXAMPLE",
        secret_access_key="s3cr3t/+key",
        session_token=token,
        target="TrentService.GenerateDataKey",
        body=BODY,
        now=when,
    )
    request = AWSRequest(
        method="POST",
        url="https://127.0.0.1:8443/",
        data=BODY,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "TrentService.GenerateDataKey",
        },
    )
    import botocore.auth

    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda **_: when.replace(tzinfo=None)
    )
    SigV4Auth(Credentials("AKIAEXAMPLE", "s3cr3t/+key", token), "kms", "eu-west-3").add_auth(
        request
    )
    assert request.headers["X-Amz-Date"] == ours["x-amz-date"]
    assert request.headers["Authorization"] == ours["authorization"]


ENV = {
    "AWS_ENDPOINT_URL_KMS": "https://kms.example:8443",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIA1",
    "AWS_SECRET_ACCESS_KEY": "secret",
}


def test_direct_only_when_the_environment_says_everything(tmp_path: Path) -> None:
    assert direct_from_environment(environ=ENV) is not None
    for missing in ENV:
        assert (
            direct_from_environment(environ={k: v for k, v in ENV.items() if k != missing}) is None
        )
    assert direct_from_environment(environ={**ENV, "AWS_ENDPOINT_URL_KMS": ""}) is None
    assert direct_from_environment(profile="dev", environ=ENV) is None
    assert direct_from_environment(environ={**ENV, "AWS_USE_FIPS_ENDPOINT": "true"}) is None
    with pytest.raises(ValidationError, match=r"nope\.pem \(from AWS_CA_BUNDLE\)"):
        direct_from_environment(environ={**ENV, "AWS_CA_BUNDLE": str(tmp_path / "nope.pem")})


def _client(info: ServerInfo, secret: str | None = None) -> DirectKmsDataKeys:
    creds = info.credentials
    return DirectKmsDataKeys(
        info.endpoint_url,
        "us-east-1",
        (creds["AccessKeyId"], secret or creds["SecretAccessKey"], None),
        str(info.ca_bundle),
    )


def test_round_trip_and_errors_against_a_server(kms_server: ServerInfo, kms_key_arn: str) -> None:
    keys = _client(kms_server)
    try:
        data_key = keys.generate_data_key(kms_key_arn, {"app": "direct"})
        assert len(data_key.plaintext) == 32 and data_key.key_arn == kms_key_arn
        opened = keys.decrypt_data_key(data_key.wrapped, {"app": "direct"}, kms_key_arn)
        assert opened == data_key.plaintext
        with pytest.raises(NotFoundError):
            keys.generate_data_key("alias/none-such", None)
    finally:
        keys.close()
    wrong_secret = _client(kms_server, secret="wrong")
    try:
        with pytest.raises(AuthError):
            wrong_secret.generate_data_key(kms_key_arn, None)
    finally:
        wrong_secret.close()  # its connection stays open after an error answer
    other_ca = DirectKmsDataKeys(
        kms_server.endpoint_url,
        "us-east-1",
        ("AKIA1", "secret", None),
        None,  # the system store does not know the server's CA
    )
    with pytest.raises(DependencyTimeoutError, match="TLS failed"):
        other_ca.generate_data_key(kms_key_arn, None)
