"""Data keys from the AWS KMS API over HTTP: a Strongroom server or AWS KMS itself.

:class:`KmsHttpDataKeys` is the :class:`~strongroom.data.keys.DataKeyProvider` over a boto3
KMS client: ``GenerateDataKey`` (``KeySpec=AES_256``) and ``Decrypt``. Build it with
:meth:`KmsHttpDataKeys.connect`, which follows the standard AWS chain for everything not
given: credentials (environment, profile, config files...), region, ``AWS_ENDPOINT_URL_KMS``
(botocore reads it) and ``AWS_CA_BUNDLE``::

    keys = KmsHttpDataKeys.connect(endpoint_url="https://kms.internal:8443",
                                   ca_bundle="ca.pem")
    encrypt_stream(src, dst, keys, key_id="alias/backups")

Errors of the service come back as the Strongroom error of the same AWS error type
(:func:`strongroom_error`, through :func:`~strongroom.errors.error_for_aws_type`:
``NotFoundException`` -> :class:`~strongroom.errors.NotFoundError` and so on), so code above
this module cannot tell which service answered.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

from strongroom.data.keys import (
    DataKey,
    data_key_of,
    decrypt_data_key_request,
    generate_data_key_request,
)
from strongroom.errors import (
    AuthError,
    DependencyTimeoutError,
    KMSInternalError,
    StrongroomError,
    ValidationError,
    error_for_aws_type,
)

T = TypeVar("T")


def strongroom_error(exc: Exception, service: str = "the key service") -> StrongroomError:
    """The Strongroom error for a botocore exception (a Strongroom error is returned as is).

    ``service`` names the other side in messages about reaching it.
    """
    from botocore import exceptions as boto

    if isinstance(exc, StrongroomError):
        return exc
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        code = str(error.get("Code") or "UnknownError")
        return error_for_aws_type(code, str(error.get("Message") or ""), status)
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return AuthError(
            "MissingAuthenticationTokenException",
            "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "a profile, or another source of the AWS credential chain.",
        )
    if isinstance(exc, boto.NoRegionError):
        return ValidationError("No AWS region is set: give --region or set AWS_DEFAULT_REGION.")
    if isinstance(exc, boto.ParamValidationError):
        return ValidationError(str(exc))
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
        return DependencyTimeoutError(f"Cannot reach {service}: {exc}")
    return KMSInternalError(f"{service}: {exc}")


@contextmanager
def aws_errors(service: str = "the key service") -> Iterator[None]:
    """Re-raise botocore exceptions inside the block as Strongroom errors."""
    from botocore import exceptions as boto

    try:
        yield
    except (boto.ClientError, boto.BotoCoreError) as exc:
        raise strongroom_error(exc, service) from exc


def check_ca_bundle(session: Any, given: str | None) -> None:
    """Fail naming the file when the CA bundle to verify with does not exist.

    ``given`` is the caller's (``--ca-bundle``); otherwise the AWS chain's
    (``AWS_CA_BUNDLE`` or ``ca_bundle`` of the profile). botocore would only fail at the
    first request, with ``[Errno 2] No such file or directory`` and no path.
    """
    path: str | None
    if given:
        path, origin = given, "--ca-bundle"
    else:
        core = getattr(session, "_session", session)  # a boto3 session, or botocore's own
        with aws_errors():
            found = getattr(core, "get_config_variable", None)
            path = found("ca_bundle") if found is not None else None
        if not path:
            return
        origin = (
            "AWS_CA_BUNDLE"
            if os.environ.get("AWS_CA_BUNDLE") == path
            else "ca_bundle in the AWS config"
        )
    if not os.path.isfile(path):
        raise ValidationError(
            f"The CA bundle {path} (from {origin}) does not exist. Point it at the CA "
            "certificate that verifies the server (a Strongroom server's is DATA_DIR/ca.pem; "
            "'eval \"$(strongroom env)\"' sets AWS_CA_BUNDLE to it)."
        )


def is_aws_endpoint(url: str) -> bool:
    """Whether ``url`` is one of AWS's own endpoints (``*.amazonaws.com`` and the like)."""
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


class KmsHttpDataKeys:
    """:class:`~strongroom.data.keys.DataKeyProvider` over the AWS KMS API (a boto3 client).

    ``kms_client`` is a boto3 ``kms`` client; ``sts_client`` (optional) answers
    :meth:`account_id`. Both are thread-safe, and so is this object.
    """

    def __init__(self, kms_client: Any, sts_client: Any | None = None) -> None:
        self._kms = kms_client
        self._sts = sts_client
        self._account: str | None = None

    @classmethod
    def connect(
        cls,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        ca_bundle: str | None = None,
        profile: str | None = None,
        session: Any | None = None,
        sts: bool = True,
        **config: Any,
    ) -> KmsHttpDataKeys:
        """Build the clients from the standard AWS chain, overriding what is given.

        ``endpoint_url`` defaults to ``AWS_ENDPOINT_URL_KMS`` (then AWS itself),
        ``ca_bundle`` to ``AWS_CA_BUNDLE`` (then the system trust store), credentials and
        region to the usual chain (``profile`` picks a named profile). ``config`` goes to
        botocore's ``Config`` (``retries``, ``connect_timeout``...). The STS client for
        :meth:`account_id` talks to the same endpoint unless that is AWS's own; with
        ``sts=False`` none is made (it costs start-up time to commands that never ask).
        """
        from botocore.config import Config

        with aws_errors():
            if session is not None:
                make = session.client
                check_ca_bundle(session, ca_bundle)
            else:  # botocore alone: boto3 would also load s3transfer, which costs start-up
                import botocore.session

                core = botocore.session.Session(profile=profile)
                check_ca_bundle(core, ca_bundle)
                make = core.create_client
            options: dict[str, Any] = {"region_name": region, "config": Config(**config)}
            if ca_bundle is not None:
                options["verify"] = ca_bundle
            kms = make("kms", endpoint_url=endpoint_url, **options)
            resolved = str(kms.meta.endpoint_url)
            sts_endpoint = None if is_aws_endpoint(resolved) else resolved
            sts_client = make("sts", endpoint_url=sts_endpoint, **options) if sts else None
        return cls(kms, sts_client)

    @property
    def kms_client(self) -> Any:
        """The boto3 KMS client (for operations beyond data keys: ReEncrypt, DescribeKey...)."""
        return self._kms

    @property
    def endpoint_url(self) -> str:
        """The endpoint the KMS client talks to."""
        return str(self._kms.meta.endpoint_url)

    @property
    def region(self) -> str:
        """The region the KMS client signs for."""
        return str(self._kms.meta.region_name)

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        """``GenerateDataKey`` with ``KeySpec=AES_256``; the key ARN comes from the reply."""
        request = generate_data_key_request(key_id, context)
        return data_key_of(self._call(self._kms.generate_data_key, **request))

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """``Decrypt`` the wrapped key (naming ``key_id`` when given, as AWS advises)."""
        request = decrypt_data_key_request(wrapped_key, context, key_id)
        return bytes(self._call(self._kms.decrypt, **request)["Plaintext"])

    def re_encrypt_data_key(
        self,
        wrapped_key: bytes,
        context: Mapping[str, str] | None,
        destination_key_id: str,
        source_key_id: str | None = None,
    ) -> DataKey:
        """``ReEncrypt`` a wrapped key under ``destination_key_id`` (its current version).

        The plaintext never leaves the key service; the context stays the same. The
        returned :class:`DataKey` has an empty ``plaintext``.
        """
        request: dict[str, Any] = {
            "CiphertextBlob": wrapped_key,
            "DestinationKeyId": destination_key_id,
        }
        if context:
            request["SourceEncryptionContext"] = dict(context)
            request["DestinationEncryptionContext"] = dict(context)
        if source_key_id is not None:
            request["SourceKeyId"] = source_key_id
        reply = self._call(self._kms.re_encrypt, **request)
        return DataKey(b"", bytes(reply["CiphertextBlob"]), str(reply["KeyId"]))

    def account_id(self) -> str:
        """The account id (tenant) of the credentials, by ``sts:GetCallerIdentity`` (once)."""
        if self._account is None:
            if self._sts is None:
                raise ValidationError("No STS client to ask for the caller's account id.")
            self._account = str(self._call(self._sts.get_caller_identity)["Account"])
        return self._account

    def close(self) -> None:
        """Close the clients' connection pools."""
        for client in (self._kms, self._sts):
            if client is not None:
                client.close()

    @staticmethod
    def _call(method: Callable[..., T], **request: Any) -> T:
        with aws_errors():
            return method(**request)

    def __repr__(self) -> str:
        return f"KmsHttpDataKeys(endpoint_url={self.endpoint_url!r})"
