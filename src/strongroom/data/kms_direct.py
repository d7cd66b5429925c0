"""Data keys over the AWS KMS API without botocore, when the environment says everything.

``strongroom encrypt`` and ``decrypt`` make one request each. botocore (and boto3) take
several times longer to import than the whole rest of the command, so when the
environment names the endpoint, region and static credentials (as
``eval "$(strongroom env)"`` sets them) :class:`DirectKmsDataKeys` sends the two
operations itself: AWS JSON 1.1 over :class:`~strongroom.awsjson.http11.Http11` (not
``http.client``, whose ``email`` parser costs more to import than the request), signed by
:mod:`strongroom.awsjson.sigv4`, verified against ``AWS_CA_BUNDLE`` or the system store.
Anything else in the AWS chain (profiles, SSO, instance roles, config files) is
botocore's: :func:`direct_from_environment` then returns ``None`` and the caller uses
:class:`~strongroom.data.kms_http.KmsHttpDataKeys`.
Errors are the same Strongroom errors, by AWS error type.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
from urllib.parse import urlsplit

from strongroom.awsjson.error_types import error_for_aws_type
from strongroom.awsjson.http11 import Http11
from strongroom.awsjson.sigv4 import sign_post
from strongroom.data.keys import (
    DataKey,
    data_key_of,
    decrypt_data_key_request,
    generate_data_key_request,
    re_encrypt_data_key_request,
)
from strongroom.errors import DependencyTimeoutError, KMSInternalError, ValidationError

TYPE_CHECKING = False  # not typing's: `strongroom encrypt` starts without importing it
if TYPE_CHECKING:
    import datetime
    from collections.abc import Mapping
    from typing import Any

SERVICE = "kms"
TIMEOUT_SECONDS = 60.0
MAX_RESPONSE_BYTES = 1 << 20
ATTEMPTS = 3
"""Tries of a request that failed in a way worth repeating (as botocore's standard mode)."""
RETRIED_TYPES = frozenset(
    {"ThrottlingException", "KMSInternalException", "DependencyTimeoutException"}
)


def sigv4_headers(
    *,
    host: str,
    region: str,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None,
    target: str,
    body: bytes,
    now: datetime.datetime,
) -> dict[str, str]:
    """The headers of a signed ``POST /`` (AWS Signature Version 4, service ``kms``).

    :func:`strongroom.awsjson.sigv4.sign_post` at the time ``now``.
    """
    return sign_post(
        host=host,
        path="/",
        region=region,
        service=SERVICE,
        credentials=(access_key_id, secret_access_key, session_token),
        target=target,
        body=body,
        amz_date=now.strftime("%Y%m%dT%H%M%SZ"),
    )


class DirectKmsDataKeys:
    """:class:`~strongroom.data.keys.DataKeyProvider` over the AWS KMS API, stdlib HTTP.

    Thread-safe: requests take turns on its one connection.
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: tuple[str, str, str | None],
        ca_bundle: str | None = None,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValidationError(f"The KMS endpoint {endpoint_url!r} is not an http(s) URL.")
        self._url = endpoint_url
        self._netloc = parts.netloc
        self._path = parts.path or "/"
        self._region = region
        self._credentials = credentials
        https = parts.scheme == "https"
        self._http = Http11(
            parts.hostname,
            parts.port or (443 if https else 80),
            tls=https,
            ca_bundle=ca_bundle,
            timeout=TIMEOUT_SECONDS,
        )
        self._lock = threading.Lock()  # one connection: one request at a time

    @property
    def endpoint_url(self) -> str:
        """The endpoint requests go to."""
        return self._url

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        """``GenerateDataKey`` with ``KeySpec=AES_256``."""
        reply = self._call("GenerateDataKey", generate_data_key_request(key_id, context))
        return data_key_of(_blobs(reply, "Plaintext", "CiphertextBlob"))

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """``Decrypt`` the wrapped key (naming ``key_id`` when given)."""
        reply = self._call("Decrypt", decrypt_data_key_request(wrapped_key, context, key_id))
        return bytes(_blobs(reply, "Plaintext")["Plaintext"])

    def re_encrypt_data_key(
        self,
        wrapped_key: bytes,
        context: Mapping[str, str] | None,
        destination_key_id: str,
        source_key_id: str | None = None,
    ) -> DataKey:
        """``ReEncrypt`` under ``destination_key_id``, the context unchanged (no plaintext)."""
        request = re_encrypt_data_key_request(
            wrapped_key, context, destination_key_id, source_key_id
        )
        reply = _blobs(self._call("ReEncrypt", request), "CiphertextBlob")
        return DataKey(b"", bytes(reply["CiphertextBlob"]), str(reply["KeyId"]))

    def close(self) -> None:
        """Close the connection."""
        self._http.close()

    def _call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:  # callers may share this client between threads (backup restore)
            return self._call_locked(operation, request)

    def _call_locked(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        payload = {
            name: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
            for name, value in request.items()
        }
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        for attempt in range(1, ATTEMPTS + 1):
            headers = sign_post(
                host=self._netloc,
                path=self._path,
                region=self._region,
                service=SERVICE,
                credentials=self._credentials,
                target=f"TrentService.{operation}",
                body=body,
                amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            )
            try:
                status, content = self._http.post(self._path, headers, body, MAX_RESPONSE_BYTES)
            except ssl.SSLError as exc:
                self.close()
                raise DependencyTimeoutError(
                    f"Cannot reach the key service at {self._url}: TLS failed ({exc.reason or exc})"
                    f"; is AWS_CA_BUNDLE the CA that signed its certificate?"
                ) from None
            except OSError as exc:
                self.close()
                if attempt < ATTEMPTS:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise DependencyTimeoutError(
                    f"Cannot reach the key service at {self._url}: {exc}"
                ) from None
            try:
                reply = json.loads(content) if content else {}
            except ValueError:
                reply = None
            if not isinstance(reply, dict):
                raise KMSInternalError(f"The key service answered HTTP {status} without JSON.")
            if status == 200:
                return reply
            code = str(reply.get("__type") or "UnknownError").rsplit("#", 1)[-1]
            if attempt < ATTEMPTS and (status >= 500 or code in RETRIED_TYPES):
                time.sleep(0.05 * 2**attempt)
                continue
            message = str(reply.get("message") or reply.get("Message") or "")
            raise error_for_aws_type(code, message, status)
        raise KMSInternalError("unreachable")  # pragma: no cover - the loop returns or raises

    def __repr__(self) -> str:
        return f"DirectKmsDataKeys(endpoint_url={self._url!r})"


def _blobs(reply: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """``reply`` with its base64 members ``names`` decoded."""
    decoded = dict(reply)
    try:
        for name in names:
            decoded[name] = base64.b64decode(str(reply[name]), validate=True)
    except (KeyError, ValueError):
        raise KMSInternalError("The key service's reply is not a KMS reply.") from None
    return decoded


def direct_from_environment(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    ca_bundle: str | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> DirectKmsDataKeys | None:
    """A direct client when the options and environment name everything, else ``None``.

    Everything: an endpoint (``endpoint_url``, ``AWS_ENDPOINT_URL_KMS`` or
    ``AWS_ENDPOINT_URL``), a region (``region``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``)
    and static credentials in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (botocore
    takes those before any profile), with no ``profile`` asked for and the endpoint
    discovery botocore alone knows (``AWS_USE_FIPS_ENDPOINT``...) not asked for either.
    """
    env = os.environ if environ is None else environ
    if profile or env.get("AWS_USE_FIPS_ENDPOINT") or env.get("AWS_USE_DUALSTACK_ENDPOINT"):
        return None
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    url = endpoint_url or env.get("AWS_ENDPOINT_URL_KMS") or env.get("AWS_ENDPOINT_URL")
    chosen_region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not (url and chosen_region and key_id and secret):
        return None
    bundle = ca_bundle or env.get("AWS_CA_BUNDLE") or None
    if bundle is not None and not os.path.isfile(bundle):
        origin = "--ca-bundle" if ca_bundle else "AWS_CA_BUNDLE"
        raise ValidationError(
            f"The CA bundle {bundle} (from {origin}) does not exist. Point it at the CA "
            "certificate that verifies the server (a Strongroom server's is DATA_DIR/ca.pem; "
            "'eval \"$(strongroom env)\"' sets AWS_CA_BUNDLE to it)."
        )
    token = env.get("AWS_SESSION_TOKEN") or None
    return DirectKmsDataKeys(url, chosen_region, (key_id, secret, token), bundle)
