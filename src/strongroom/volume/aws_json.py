"""A small AWS KMS client over the standard library: SigV4-signed JSON 1.1 over HTTPS.

The volume commands need five KMS operations (``GenerateDataKey``, ``Decrypt``,
``ReEncrypt``, ``DescribeKey``, ``DisableKey``); each is one ``POST /`` with a JSON body,
``Content-Type: application/x-amz-json-1.1`` and ``X-Amz-Target: TrentService.<Op>``,
signed with Signature Version 4 (:mod:`strongroom.awsjson.sigv4`). This module does
exactly that over :class:`~strongroom.awsjson.http11.Http11`, so a ``Decrypt`` costs a
TLS handshake and a round trip rather than a boto3 import (see :mod:`.aws_chain`). Errors
come back as the Strongroom error of the same AWS type, as with boto3
(:func:`~strongroom.awsjson.error_types.error_for_aws_type`).
"""

from __future__ import annotations

import base64
import json
import time

from strongroom.awsjson.error_types import error_for_aws_type
from strongroom.awsjson.http11 import Http11
from strongroom.awsjson.sigv4 import sign_post
from strongroom.errors import (
    DependencyTimeoutError,
    KMSInternalError,
    StrongroomError,
    ValidationError,
)
from strongroom.volume.aws_chain import StaticSettings

TYPE_CHECKING = False  # not typing's: this module is on the fast `volume pass` path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SERVICE = "kms"
TARGET_PREFIX = "TrentService."
TIMEOUT_SECONDS = 30.0
MAX_RESPONSE_BYTES = 1 << 20
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-")
_DIGITS = frozenset("0123456789")
_NOT_PLAIN = frozenset("?#@\\ \t\r\n")


class EndpointParts:
    """What the client needs of an endpoint URL: scheme, ``host[:port]``, host, port, path.

    As ``urllib.parse.urlsplit`` gives them (scheme and host lower-case, no brackets
    around an IPv6 host; port ``None`` when absent).
    """

    __slots__ = ("hostname", "netloc", "path", "port", "scheme")

    def __init__(
        self, scheme: str, netloc: str, hostname: str, port: int | None, path: str
    ) -> None:
        self.scheme, self.netloc, self.hostname = scheme, netloc, hostname
        self.port, self.path = port, path


def split_endpoint(url: str) -> EndpointParts:
    """The parts of an endpoint URL, as ``urllib.parse.urlsplit`` gives them.

    ``http(s)://host[:port][/path]`` is read here, anything else by ``urlsplit`` (importing
    it costs ``volume pass`` a few per cent of its CPU). A port above 65535 is a
    :class:`~strongroom.errors.ValidationError`.
    """
    plain = _plain_parts(url)
    if plain is not None:
        return plain
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return EndpointParts(
            parts.scheme, parts.netloc, parts.hostname or "", parts.port, parts.path
        )
    except ValueError:
        raise ValidationError(f"Not an endpoint URL: {url!r}.") from None


def sign_headers(
    *,
    host: str,
    path: str,
    target: str,
    body: bytes,
    settings: StaticSettings,
    region: str,
    amz_date: str,
) -> dict[str, str]:
    """The headers of a signed ``POST path`` (SigV4, service ``kms``) carrying ``body``.

    :func:`strongroom.awsjson.sigv4.sign_post` with the keys of ``settings``.
    """
    return sign_post(
        host=host,
        path=path,
        region=region,
        service=SERVICE,
        credentials=(settings.access_key_id, settings.secret_access_key, settings.session_token),
        target=target,
        body=body,
        amz_date=amz_date,
    )


def _plain_parts(url: str) -> EndpointParts | None:
    """``http(s)://name[:port][/path]`` split by hand (no regex to compile), else ``None``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or _NOT_PLAIN & set(rest):
        return None
    netloc, slash, path = rest.partition("/")
    host, colon, port_text = netloc.partition(":")  # an IPv6 "[...]" host goes to urlsplit
    if not host or not set(host) <= _HOST_CHARS:
        return None
    port = None
    if colon and port_text:  # "host:" has no port, as for urlsplit
        if len(port_text) > 5 or not set(port_text) <= _DIGITS:
            return None
        port = int(port_text)
        if port > 65535:
            raise ValidationError(f"Not an endpoint URL: {url!r} (port out of range).")
    return EndpointParts(scheme.lower(), netloc, host.lower(), port, slash + path)


class AwsJsonKms:
    """:class:`~strongroom.volume.kms.VolumeKeys` over ``http.client`` (static settings).

    ``default_region`` is used when the settings name none (the region of the key ARN a
    caller works with). One connection is kept open between calls.
    """

    def __init__(self, settings: StaticSettings, default_region: str = "") -> None:
        self._settings = settings
        self.region = settings.region or default_region
        if not self.region:
            raise ValidationError("No AWS region is set: give --region or set AWS_DEFAULT_REGION.")
        self.endpoint_url = settings.url_for(self.region)
        parts = split_endpoint(self.endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(f"Not an endpoint URL: {self.endpoint_url!r}.")
        self._parts = parts
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._http = Http11(
            parts.hostname,
            port,
            tls=parts.scheme == "https",
            ca_bundle=settings.ca_bundle,
            timeout=TIMEOUT_SECONDS,
        )

    def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send one KMS operation; return the decoded JSON answer or raise its error."""
        body = json.dumps(request, separators=(",", ":")).encode("utf-8")
        path = self._parts.path or "/"
        headers = sign_headers(
            host=self._parts.netloc,
            path=path,
            target=TARGET_PREFIX + operation,
            body=body,
            settings=self._settings,
            region=self.region,
            amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        )
        try:
            status, data = self._http.post(path, headers, body, MAX_RESPONSE_BYTES)
        except OSError as exc:
            raise DependencyTimeoutError(f"Cannot reach the key service: {exc}") from None
        return _decode(status, data)

    def generate_data_key(
        self, key_id: str, context: Mapping[str, str]
    ) -> tuple[bytes, bytes, str]:
        """``GenerateDataKey`` (AES_256): plaintext, ciphertext blob, key ARN."""
        answer = self.call(
            "GenerateDataKey",
            {"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": dict(context)},
        )
        return _b64(answer, "Plaintext"), _b64(answer, "CiphertextBlob"), str(answer["KeyId"])

    def decrypt(self, blob: bytes, context: Mapping[str, str], key_id: str) -> bytes:
        """``Decrypt`` naming the key; the plaintext."""
        answer = self.call(
            "Decrypt",
            {
                "CiphertextBlob": base64.b64encode(blob).decode("ascii"),
                "EncryptionContext": dict(context),
                "KeyId": key_id,
            },
        )
        return _b64(answer, "Plaintext")

    def re_encrypt(
        self,
        blob: bytes,
        source_context: Mapping[str, str],
        source_key: str,
        destination_key: str,
        destination_context: Mapping[str, str],
    ) -> tuple[bytes, str]:
        """``ReEncrypt``: the new blob and the destination key ARN."""
        answer = self.call(
            "ReEncrypt",
            {
                "CiphertextBlob": base64.b64encode(blob).decode("ascii"),
                "SourceEncryptionContext": dict(source_context),
                "SourceKeyId": source_key,
                "DestinationKeyId": destination_key,
                "DestinationEncryptionContext": dict(destination_context),
            },
        )
        return _b64(answer, "CiphertextBlob"), str(answer["KeyId"])

    def describe_key(self, key_id: str) -> dict[str, Any]:
        """``DescribeKey``: the ``KeyMetadata``."""
        metadata = self.call("DescribeKey", {"KeyId": key_id}).get("KeyMetadata")
        if not isinstance(metadata, dict):
            raise KMSInternalError("DescribeKey answered without KeyMetadata.")
        return metadata

    def disable_key(self, key_id: str) -> None:
        """``DisableKey``."""
        self.call("DisableKey", {"KeyId": key_id})

    def close(self) -> None:
        """Close the connection."""
        self._http.close()

    def __repr__(self) -> str:
        return f"AwsJsonKms(endpoint_url={self.endpoint_url!r})"


def _b64(answer: Mapping[str, Any], member: str) -> bytes:
    try:
        return base64.b64decode(str(answer[member]), validate=True)
    except (KeyError, ValueError):
        raise KMSInternalError(f"The key service answered without a valid {member}.") from None


def _decode(status: int, data: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(data) if data else {}
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise KMSInternalError(f"The key service answered HTTP {status} without JSON.")
    if status == 200:
        return answer
    kind = str(answer.get("__type") or "").rsplit("#", 1)[-1]
    message = str(answer.get("message") or answer.get("Message") or "")
    error: StrongroomError = error_for_aws_type(kind, message, status)
    raise error
