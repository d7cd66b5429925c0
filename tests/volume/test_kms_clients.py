"""The two KMS clients of the volume commands: the standard-library one (SigV4 checked
against botocore's signer, the static AWS chain) and boto3 (whenever the chain needs it),
both against the real server and through the command line."""

from __future__ import annotations

import json
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.errors import NotFoundError, ValidationError
from strongroom.testing.luks import cryptsetup_missing
from strongroom.volume.aws_chain import StaticSettings, static_settings
from strongroom.volume.aws_json import AwsJsonKms, sign_headers
from strongroom.volume.kms import BotoVolumeKeys, connect

if TYPE_CHECKING:
    from tests.volume.conftest import Cli, VolumeWorld


@pytest.mark.parametrize("token", [None, "session-token-value"])
@pytest.mark.parametrize("path", ["/", "/kms"])
def test_signature_is_the_one_botocore_makes(
    token: str | None, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = StaticSettings(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, "eu-west-1", None, None
    )
    now = datetime(2026, 12, 5, 10, 11, 12, tzinfo=UTC)
    body = b'{"KeyId":"alias/x","CiphertextBlob":"AAAA"}'
    ours = sign_headers(
        host="kms.example:8443",
        path=path,
        target="TrentService.Decrypt",
        body=body,
        settings=settings,
        region="eu-west-1",
        amz_date=now.strftime("%Y%m%dT%H%M%SZ"),
    )
    request = AWSRequest(method="POST", url=f"https://kms.example:8443{path}", data=body)
    for name in ("content-type", "x-amz-target", "x-amz-date"):
        request.headers[name] = ours[name]
    signer = SigV4Auth(
        Credentials(settings.access_key_id, settings.secret_access_key, token), "kms", "eu-west-1"
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    signer.add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_static_chain(tmp_path: Path) -> None:
    config = write(
        tmp_path / "config",
        "[default]\nregion = eu-central-1\n"
        "[profile ops]\nregion = us-west-2\nendpoint_url = https://kms.ops:8443\n"
        "ca_bundle = /etc/ops-ca.pem\naws_access_key_id = AKOPS\n"
        "aws_secret_access_key = ops-secret\n"
        "[profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = ops\n",
    )
    shared = write(
        tmp_path / "credentials",
        "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = def-secret\n",
    )
    files = {"AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": shared}
    env = {**files, "AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    found = static_settings(environ=env)
    assert found is not None and found.access_key_id == "AKENV"
    assert found.region == "eu-central-1" and found.endpoint_url is None
    assert "env-secret" not in repr(found)
    # an explicit profile wins over environment keys, as in botocore
    ops = static_settings(profile="ops", environ=env)
    assert ops is not None and ops.access_key_id == "AKOPS" and ops.region == "us-west-2"
    assert ops.endpoint_url == "https://kms.ops:8443" and ops.ca_bundle == "/etc/ops-ca.pem"
    assert static_settings(environ=files) == StaticSettings(
        "AKDEF", "def-secret", None, "eu-central-1", None, None
    )
    assert static_settings(profile="role", environ=env) is None
    assert static_settings(environ={**env, "AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}) is None
    assert static_settings(profile="missing", environ=env) is None
    assert (
        static_settings(
            environ={"AWS_CONFIG_FILE": "/none", "AWS_SHARED_CREDENTIALS_FILE": "/none"}
        )
        is None
    )
    chosen = static_settings(
        endpoint_url="https://given", region="ap-south-1", ca_bundle="/ca", environ=env
    )
    assert chosen is not None and chosen.url_for(chosen.region) == "https://given"
    ignored = static_settings(
        profile="ops", environ={**env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    )
    assert (
        ignored is not None
        and ignored.url_for("cn-north-1") == "https://kms.cn-north-1.amazonaws.com.cn"
    )


def test_json_client_against_the_server(world: VolumeWorld) -> None:
    creds = world.a.credentials
    settings = StaticSettings(
        creds.access_key_id,
        creds.secret_access_key,
        None,
        "",
        world.server.endpoint.url,
        str(world.server.endpoint.ca_bundle),
    )
    with pytest.raises(ValidationError, match="region"):
        AwsJsonKms(settings)
    kms = AwsJsonKms(settings, default_region="eu-west-1")
    try:
        plain, blob, arn = kms.generate_data_key(world.a.key_arn, {"a": "b"})
        assert arn == world.a.key_arn and len(plain) == 32
        assert kms.decrypt(blob, {"a": "b"}, arn) == plain
        new_blob, new_arn = kms.re_encrypt(blob, {"a": "b"}, arn, arn, {"a": "c"})
        assert new_arn == arn and kms.decrypt(new_blob, {"a": "c"}, arn) == plain
        assert kms.describe_key(arn)["KeyState"] == "Enabled"
        with pytest.raises(NotFoundError):
            kms.describe_key("alias/none-such")
    finally:
        kms.close()


def test_boto_client_when_the_chain_is_not_static(world: VolumeWorld, tmp_path: Path) -> None:
    creds = world.a.credentials
    process = tmp_path / "creds.py"
    answer = {
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
    }
    process.write_text(f"import json\nprint(json.dumps({answer!r}))\n")
    process.chmod(process.stat().st_mode | stat.S_IXUSR)
    command = f"{sys.executable} {process}"
    config = write(
        tmp_path / "config", f"[profile proc]\ncredential_process = {command}\nregion = eu-west-1\n"
    )
    env = world.env(world.a, AWS_CONFIG_FILE=config, AWS_PROFILE="proc")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        del env[name]
    monkey = pytest.MonkeyPatch()
    try:
        for name, value in env.items():
            monkey.setenv(name, value)
        monkey.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkey.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
        keys = connect()
        assert isinstance(keys, BotoVolumeKeys)
        plain, blob, arn = keys.generate_data_key(world.a.key_arn, {"x": "y"})
        assert keys.decrypt(blob, {"x": "y"}, arn) == plain
        keys.close()
    finally:
        monkey.undo()


@pytest.mark.skipif(cryptsetup_missing(), reason="cryptsetup is not installed")
def test_pass_is_the_same_through_boto3_and_the_fast_start(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = tmp_path / "b.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    fast = cli("volume", "pass", str(image)).stdout
    creds = world.a.credentials
    config = write(
        tmp_path / "config",
        "[profile proc]\ncredential_process = "
        f"{sys.executable} -c \"import json; print(json.dumps({{'Version': 1, "
        f"'AccessKeyId': '{creds.access_key_id}', "
        f"'SecretAccessKey': '{creds.secret_access_key}'}}))\"\n",
    )
    env = world.env(world.a, AWS_CONFIG_FILE=config)
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    slow = cli(
        "volume",
        "pass",
        str(image),
        "--profile",
        "proc",
        "--endpoint",
        world.server.endpoint.url,
        env=env,
    ).stdout
    assert slow == fast
    # the region comes from the key ARN when nothing else names one
    env = world.env(world.a)
    del env["AWS_DEFAULT_REGION"]
    assert cli("volume", "pass", str(image), env=env).stdout == fast
    shown = json.loads(cli("volume", "status", str(image), "--check", "--json", env=env).stdout)
    assert shown["Tokens"][0]["Unlocks"] is True


@pytest.mark.skipif(cryptsetup_missing(), reason="cryptsetup is not installed")
def test_the_fast_start_takes_endpoint_and_ca_bundle_from_the_config_file(
    cli: Cli, world: VolumeWorld, tmp_path: Path
) -> None:
    image = tmp_path / "c.img"
    cli("volume", "format", str(image), "--size", "32M", "-k", world.a.key_arn)
    expected = cli("volume", "pass", str(image)).stdout
    config = write(
        tmp_path / "config",
        f"[default]\nendpoint_url = {world.server.endpoint.url}\n"
        f"ca_bundle = {world.server.endpoint.ca_bundle}\n",
    )
    env = world.env(world.a, AWS_CONFIG_FILE=config, PYTHONPROFILEIMPORTTIME="1")
    del env["AWS_ENDPOINT_URL_KMS"], env["AWS_CA_BUNDLE"], env["AWS_DEFAULT_REGION"]
    done = cli("volume", "pass", str(image), env=env)
    assert done.stdout == expected
    imported = done.stderr.decode()
    assert "strongroom.volume.aws_json" in imported and "typer" not in imported
