"""Strongroom's own operations over HTTP: AWS JSON 1.1 requests signed with SigV4.

A Strongroom server answers its own operations beside AWS KMS's, on the same endpoint,
under their own ``X-Amz-Target`` prefix (``StrongroomUserKeys``, ``StrongroomMesh``).
boto3 has no methods for them, so :class:`SignedJsonClient` signs each request with
botocore's ``SigV4Auth`` (service ``kms``) and sends it with botocore's HTTP session;
credentials, region and CA bundle come from the standard AWS chain::

    client = SignedJsonClient.connect("StrongroomMesh", endpoint_url="https://kms:8443")
    client.call("GetMeshBundle", {"TrustDomain": "example.org"})

``bytes`` members of a request are sent base64-encoded; replies are returned as parsed
JSON (blobs still base64, see :func:`reply_blob`). A refusal raises the Strongroom error
of its AWS type. Requests are not retried: the caller knows which ones are safe to repeat.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from strongroom.awsjson.ca_bundle import check_ca_bundle
from strongroom.awsjson.error_types import error_for_aws_type
from strongroom.awsjson.errors import aws_errors
from strongroom.errors import AuthError, KMSInternalError

JSON_11 = "application/x-amz-json-1.1"
SIGNING_NAME = "kms"
DEFAULT_TIMEOUT = (10.0, 60.0)
"""Seconds to connect and to wait for a reply."""


def reply_blob(response: Mapping[str, Any], name: str) -> bytes:
    """The base64 member ``name`` of a reply, decoded (``KMSInternalError`` if it is bad)."""
    try:
        return base64.b64decode(str(response[name]), validate=True)
    except (KeyError, binascii.Error, ValueError):
        raise KMSInternalError(f"The key service's reply has no valid {name}.") from None


def session_credentials(session: Any) -> tuple[Any, str | bool]:
    """A boto3 session's credentials and CA bundle setting (``True``: the system store).

    Raises ``AuthError`` (``MissingAuthenticationTokenException``) when the chain has none.
    """
    with aws_errors():
        credentials = session.get_credentials()
        # boto3 keeps AWS_CA_BUNDLE and the profile's ca_bundle in its botocore session
        core = getattr(session, "_session", None)
        configured = core.get_config_variable("ca_bundle") if core is not None else None
    if credentials is None:
        raise AuthError(
            "MissingAuthenticationTokenException",
            "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "a profile, or another source of the AWS credential chain.",
        )
    return credentials, configured or True


class SignedJsonClient:
    """Send ``<target_prefix>.<Operation>`` requests to one endpoint. Thread-safe."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Any,
        target_prefix: str,
        *,
        verify: str | bool = True,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        from botocore.httpsession import URLLib3Session
        from botocore.utils import get_environ_proxies

        self._url = endpoint_url.rstrip("/") + "/"
        self._region = region
        self._credentials = credentials
        self._prefix = target_prefix + "."
        self._http = URLLib3Session(
            verify=verify, timeout=timeout, proxies=get_environ_proxies(self._url)
        )

    @classmethod
    def connect(
        cls,
        target_prefix: str,
        *,
        endpoint_url: str,
        region: str | None = None,
        ca_bundle: str | None = None,
        profile: str | None = None,
        session: Any | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> SignedJsonClient:
        """Build from the standard AWS chain (credentials, region, ``AWS_CA_BUNDLE``).

        ``region`` defaults to the chain's, then ``us-east-1``; ``ca_bundle`` to the
        chain's, then the system trust store.
        """
        import boto3

        with aws_errors():
            if session is None:
                session = boto3.session.Session(profile_name=profile)
            chosen_region = region or session.region_name or "us-east-1"
        check_ca_bundle(session, ca_bundle)
        credentials, configured = session_credentials(session)
        verify: str | bool = ca_bundle or configured
        return cls(
            endpoint_url, chosen_region, credentials, target_prefix, verify=verify, timeout=timeout
        )

    @property
    def endpoint_url(self) -> str:
        """The endpoint requests go to."""
        return self._url

    @property
    def region(self) -> str:
        """The region requests are signed for."""
        return self._region

    def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send one operation; return the JSON reply (blobs in base64)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        payload = {
            name: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
            for name, value in request.items()
        }
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": JSON_11, "X-Amz-Target": self._prefix + operation}
        with aws_errors():
            http_request = AWSRequest(method="POST", url=self._url, data=body, headers=headers)
            frozen = self._credentials.get_frozen_credentials()
            SigV4Auth(frozen, SIGNING_NAME, self._region).add_auth(http_request)
            reply = self._http.send(http_request.prepare())
        status, content = int(reply.status_code), bytes(reply.content or b"")
        try:
            parsed = json.loads(content) if content.strip() else {}
        except ValueError:
            parsed = None
        if status == 200 and isinstance(parsed, dict):
            return parsed
        if isinstance(parsed, dict) and parsed.get("__type"):
            aws_type = str(parsed["__type"]).rpartition("#")[2]
            message = str(parsed.get("message") or parsed.get("Message") or "")
            raise error_for_aws_type(aws_type, message, status)
        if status == 200:
            raise KMSInternalError("The key service's reply is not a JSON object.")
        raise error_for_aws_type("UnknownError", f"HTTP {status} from {self._url}", status)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __repr__(self) -> str:
        return f"SignedJsonClient(endpoint_url={self._url!r}, target={self._prefix[:-1]!r})"
