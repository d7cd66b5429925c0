"""Talk to a Strongroom server over real HTTPS from tests: boto3 clients and raw requests.

::

    endpoint = Endpoint("https://127.0.0.1:8443", Path("data/ca.pem"))
    kms = kms_client(endpoint, credentials, region="eu-west-1")
    headers = sign_headers(endpoint, credentials, "eu-west-1", body, target="TrentService.Encrypt")
    with RawConnection(endpoint) as conn:
        reply = conn.post(body, headers)

:class:`RawConnection` keeps one TLS connection alive for many requests (and opens a new
one when the server closes it), so fuzzers are not slowed down by handshakes.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

JSON_11 = "application/x-amz-json-1.1"
TARGET_PREFIX = "TrentService."
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
    """Where a server listens (``https://host:port``) and the CA bundle that verifies it."""

    url: str
    ca_bundle: Path

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
        return ssl.create_default_context(cafile=str(self.ca_bundle))


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
        verify=str(endpoint.ca_bundle),
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
        f"ca_bundle = {endpoint.ca_bundle}\n"
        f"services = {profile}-services\n"
        f"\n[services {profile}-services]\n"
        f"kms =\n  endpoint_url = {endpoint.url}\n",
        encoding="utf-8",
    )
    session = botocore.session.Session(profile=profile)
    session.set_config_variable("config_file", str(config_file))
    session.set_config_variable("credentials_file", "/dev/null")
    # Set on the session, these win over AWS_CA_BUNDLE / AWS_DEFAULT_REGION in os.environ.
    session.set_config_variable("ca_bundle", str(endpoint.ca_bundle))
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
        "AWS_CA_BUNDLE": str(endpoint.ca_bundle),
        "AWS_ENDPOINT_URL_KMS": endpoint.url,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }
    if not endpoint_variable:
        del env["AWS_ENDPOINT_URL_KMS"]
    return env


def sign_headers(
    endpoint: Endpoint,
    credentials: AwsCredentials,
    region: str,
    body: bytes,
    *,
    target: str | None = None,
    content_type: str | None = JSON_11,
    service: str = "kms",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """SigV4-sign a ``POST /`` of ``body`` with botocore and return the headers to send.

    ``extra`` headers are signed too (they are added before signing).
    """
    headers: dict[str, str] = dict(extra or {})
    if content_type is not None:
        headers["Content-Type"] = content_type
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=endpoint.url + "/", data=body, headers=headers)
    creds = Credentials(credentials.access_key_id, credentials.secret_access_key)
    SigV4Auth(creds, service, region).add_auth(request)
    return dict(request.headers.items())


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


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class RawConnection:
    """A kept-alive HTTPS connection for hand-made requests (reopened when it drops)."""

    def __init__(self, endpoint: Endpoint, timeout: float = 30.0) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._context = endpoint.ssl_context()
        self._conn: http.client.HTTPSConnection | None = None

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        """Send one request and read the whole response."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(
                    self._endpoint.host,
                    self._endpoint.port,
                    timeout=self._timeout,
                    context=self._context,
                )
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                reply = Reply(
                    response.status,
                    {k.lower(): v for k, v in response.getheaders()},
                    response.read(),
                )
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if reply.headers.get("connection", "").lower() == "close":
                self.close()
            return reply
        raise AssertionError("unreachable")

    def post(self, body: bytes, headers: dict[str, str]) -> Reply:
        """``POST /`` with ``body`` and ``headers``."""
        return self.request("POST", "/", body, headers)


def request_counts(endpoint: Endpoint) -> dict[tuple[str, str], float]:
    """``(operation, HTTP status) -> requests served``, read from the server's ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    with RawConnection(endpoint) as conn:
        reply = conn.request("GET", "/metrics", None, {})
    if reply.status != 200:
        raise ConnectionError(f"/metrics answered {reply.status}")
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(reply.body.decode("utf-8")):
        for sample in family.samples:
            if sample.name == "strongroom_api_requests_total":
                labels = (sample.labels["operation"], sample.labels["status"])
                counts[labels] = counts.get(labels, 0.0) + sample.value
    return counts


def send_raw(
    endpoint: Endpoint, data: bytes, timeout: float = 10.0, *, half_close: bool = True
) -> bytes:
    """Write ``data`` as-is over a new TLS connection and return what comes back.

    For requests no HTTP client would send: a body shorter than its ``Content-Length``,
    a huge ``Content-Length``, broken framing. With ``half_close`` the client then shuts
    down its sending side of the TCP connection (the server sees the end of the stream)
    and reads until the server closes; ``b""`` means it closed without answering. Without
    it the client keeps the connection open and reads one whole response (its
    ``Content-Length``), so a server that answers before the body arrives is seen doing
    so; ``timeout`` bounds the wait either way. TLS runs over memory buffers so the TCP
    half-close stays in the client's hands.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = endpoint.ssl_context().wrap_bio(incoming, outgoing, server_hostname=endpoint.host)
    with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                received = sock.recv(65536)
                if not received:
                    raise ConnectionError("the server closed during the TLS handshake") from None
                incoming.write(received)
        tls.write(data)
        sock.sendall(outgoing.read())
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while not (not half_close and _complete(answer)):
            try:
                received = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if received:
                incoming.write(received)
            else:
                incoming.write_eof()
            try:
                while chunk := tls.read(65536):
                    answer += chunk
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if not received:
                break
        return answer


def _complete(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole HTTP response with a ``Content-Length``."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False
