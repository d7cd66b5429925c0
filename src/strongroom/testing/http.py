"""Talk to a Strongroom server over real HTTPS from tests: raw, SigV4-signed requests.

::

    headers = sign_headers(endpoint, credentials, "eu-west-1", body, target="TrentService.Encrypt")
    with RawConnection(endpoint) as conn:
        reply = conn.post(body, headers)

:class:`RawConnection` keeps one TLS connection alive for many requests (and opens a new
one when the server closes it), so fuzzers are not slowed down by handshakes;
:func:`send_raw` writes bytes no HTTP client would. boto3 clients, credentials and the
endpoint are :mod:`strongroom.testing.aws_clients`' (re-exported here).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.testing.aws_clients import (
    DEFAULT_REGION,
    AwsCredentials,
    AwsFailure,
    Endpoint,
    aws_error,
    botocore_session,
    client_environment,
    kms_client,
)

__all__ = [
    "DEFAULT_REGION",
    "JSON_11",
    "TARGET_PREFIX",
    "AwsCredentials",
    "AwsFailure",
    "Endpoint",
    "RawConnection",
    "Reply",
    "aws_error",
    "botocore_session",
    "client_environment",
    "kms_client",
    "request_counts",
    "send_raw",
    "sign_headers",
]

JSON_11 = "application/x-amz-json-1.1"
TARGET_PREFIX = "TrentService."


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
