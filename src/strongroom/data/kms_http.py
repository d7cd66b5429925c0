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
(:func:`~strongroom.awsjson.strongroom_error`, via
:func:`~strongroom.awsjson.error_types.error_for_aws_type`:
``NotFoundException`` -> :class:`~strongroom.errors.NotFoundError` and so on), so code above
this module cannot tell which service answered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from strongroom.awsjson.ca_bundle import check_ca_bundle
from strongroom.awsjson.errors import aws_errors as aws_errors  # re-exported
from strongroom.awsjson.errors import strongroom_error as strongroom_error  # re-exported
from strongroom.data.keys import (
    DataKey,
    data_key_of,
    decrypt_data_key_request,
    generate_data_key_request,
    re_encrypt_data_key_request,
)
from strongroom.errors import (
    ValidationError,
)

T = TypeVar("T")


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
        request = re_encrypt_data_key_request(
            wrapped_key, context, destination_key_id, source_key_id
        )
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
