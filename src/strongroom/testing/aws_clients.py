"""AWS SDK clients pointed at a test server: credentials, endpoint, boto3 and the AWS CLI.

::

    endpoint = Endpoint("https://127.0.0.1:8443", Path("data/ca.pem"))
    kms = kms_client(endpoint, credentials, region="eu-west-1")
    failure = aws_error(kms.describe_key, KeyId="alias/none")
    env = client_environment(endpoint, credentials)   # for `aws kms ...` and SDKs

Raw, hand-made requests are :mod:`strongroom.testing.http`'s.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """An access key of one tenant (its account id too, for building ARNs)."""

    access_key_id: str
    secret_access_key: str
    account_id: str

    def __repr__(self) -> str:
        return f"AwsCredentials({self.access_key_id!r}, account_id={self.account_id!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Pretty printers (hypothesis's falsifying examples) show the repr, no secret."""
        printer.text(repr(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AwsCredentials:
        """Read ``{"AccessKeyId", "SecretAccessKey", "AccountId"}`` (as the CLI prints it)."""
        return cls(
            access_key_id=str(data["AccessKeyId"]),
            secret_access_key=str(data["SecretAccessKey"]),
            account_id=str(data.get("AccountId", "")),
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a server listens (``https://host:port``) and the CA bundle that verifies it.

    ``ca_bundle`` is ``None`` for a plain HTTP endpoint (``--insecure-http``).
    """

    url: str
    ca_bundle: Path | None

    @property
    def host(self) -> str:
        """The host name or address of the URL."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The TCP port of the URL."""
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting only the endpoint's CA bundle."""
        return ssl.create_default_context(cafile=self.verify if self.ca_bundle else None)

    @property
    def verify(self) -> str:
        """The CA bundle as botocore's ``verify`` takes it (``""``: none, plain HTTP)."""
        return "" if self.ca_bundle is None else str(self.ca_bundle)


def kms_client(
    endpoint: Endpoint,
    credentials: AwsCredentials,
    region: str = DEFAULT_REGION,
    service: str = "kms",
    *,
    validate: bool = True,
) -> Any:
    """A boto3 client for ``service`` at ``endpoint``: one attempt, short timeouts.

    With ``validate=False`` botocore sends parameters it would refuse (out of range,
    too long), so the server's own validation answers.
    """
    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        region_name=region,
    )
    return session.client(
        service,
        endpoint_url=endpoint.url,
        verify=endpoint.verify or None,
        config=Config(
            retries={"total_max_attempts": 1},
            connect_timeout=10,
            read_timeout=60,
            parameter_validation=validate,
        ),
    )


def botocore_session(
    endpoint: Endpoint,
    credentials: AwsCredentials,
    region: str,
    config_file: Path,
    profile: str = "strongroom",
) -> Any:
    """A botocore session whose KMS clients go to ``endpoint``, however they are made.

    Libraries that take a session and make their own clients (the AWS Encryption SDK)
    cannot be handed an ``endpoint_url``; the shared config file can name one per service.
    This writes such a file to ``config_file`` (profile ``profile``: region, CA bundle,
    ``services`` section with the KMS endpoint) and returns a session that reads it.
    """
    config_file.write_text(
        f"[profile {profile}]\n"
        f"region = {region}\n"
        + (f"ca_bundle = {endpoint.ca_bundle}\n" if endpoint.ca_bundle else "")
        + f"services = {profile}-services\n"
        f"\n[services {profile}-services]\n"
        f"kms =\n  endpoint_url = {endpoint.url}\n",
        encoding="utf-8",
    )
    session = botocore.session.Session(profile=profile)
    session.set_config_variable("config_file", str(config_file))
    session.set_config_variable("credentials_file", "/dev/null")
    # Set on the session, these win over AWS_CA_BUNDLE / AWS_DEFAULT_REGION in os.environ.
    if endpoint.ca_bundle is not None:
        session.set_config_variable("ca_bundle", endpoint.verify)
    session.set_config_variable("region", region)
    session.set_credentials(credentials.access_key_id, credentials.secret_access_key)
    return session


def client_environment(
    endpoint: Endpoint,
    credentials: AwsCredentials,
    region: str = DEFAULT_REGION,
    *,
    endpoint_variable: bool = True,
) -> dict[str, str]:
    """Environment variables that point AWS tools (CLI, SDKs) at ``endpoint``.

    They name the credentials, the region and the CA bundle, keep shared config files
    and instance metadata out, and (with ``endpoint_variable``) set
    ``AWS_ENDPOINT_URL_KMS`` so that KMS clients made without ``endpoint_url`` use it.
    """
    env = {
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CA_BUNDLE": endpoint.verify,
        "AWS_ENDPOINT_URL_KMS": endpoint.url,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }
    if not endpoint_variable:
        del env["AWS_ENDPOINT_URL_KMS"]
    if endpoint.ca_bundle is None:
        del env["AWS_CA_BUNDLE"]
    return env


@dataclass(frozen=True, slots=True)
class AwsFailure:
    """What an AWS client saw of a refused call: error code, HTTP status, message."""

    code: str
    status: int
    message: str


def aws_error(call: Any, **params: Any) -> AwsFailure:
    """Run a boto3 client method that must fail and return how it failed.

    Raises ``AssertionError`` if the call succeeds.
    """
    try:
        call(**params)
    except ClientError as exc:
        response = exc.response
        return AwsFailure(
            code=str(response["Error"].get("Code", "")),
            status=int(response["ResponseMetadata"].get("HTTPStatusCode", 0)),
            message=str(response["Error"].get("Message", "")),
        )
    raise AssertionError(f"{getattr(call, '__name__', call)} succeeded but should have failed")
