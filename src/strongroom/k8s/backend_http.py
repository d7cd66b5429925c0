"""The plugin's key service over the AWS KMS API: a Strongroom server or AWS KMS itself.

:class:`AwsKmsBackend` runs ``Encrypt``, ``Decrypt``, ``DescribeKey`` and
``ListKeyRotations`` through a boto3 KMS client. Credentials come from the AWS credential
chain (environment, shared files, profile, instance or pod role). Each HTTP attempt is
bounded by ``timeout`` seconds (connect and read); botocore's own retries are off, since
the plugin retries transient failures itself (:mod:`strongroom.k8s.retry`) within the
deadline kube-apiserver gives it. Failures become
:class:`~strongroom.errors.StrongroomError` subclasses with the AWS error type
(:func:`~strongroom.awsjson.error_types.error_for_aws_type`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from strongroom import errors
from strongroom.awsjson.error_types import error_for_aws_type
from strongroom.k8s.backend import KeyVersion, Sealed, count_rotations

T = TypeVar("T")


class AwsKmsBackend:
    """:class:`~strongroom.k8s.backend.KeyBackend` over a boto3 KMS client."""

    def __init__(self, client: Any, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    @classmethod
    def connect(
        cls,
        endpoint_url: str | None,
        *,
        region: str | None = None,
        ca_bundle: Path | None = None,
        profile: str | None = None,
        timeout: float = 2.0,
        max_connections: int = 16,
    ) -> AwsKmsBackend:
        """A client for ``endpoint_url`` (``None``: AWS KMS of ``region``), credential chain.

        ``ca_bundle`` is the PEM file to verify the server with (``None``: the AWS chain's,
        ``AWS_CA_BUNDLE`` or ``ca_bundle`` in the AWS config, else the system's).
        """
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(profile_name=profile)
        if ca_bundle is not None and not ca_bundle.is_file():
            raise errors.ValidationError(f"The CA bundle {ca_bundle} (--ca-bundle) does not exist.")
        client = session.client(
            "kms",
            endpoint_url=endpoint_url,
            region_name=region or session.region_name or "us-east-1",
            verify=str(ca_bundle) if ca_bundle is not None else None,  # None: AWS_CA_BUNDLE
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"total_max_attempts": 1},
                max_pool_connections=max_connections,
            ),
        )
        return cls(client, timeout)

    def _run(self, fn: Callable[[], T]) -> T:
        """Run one client call; turn botocore failures into Strongroom errors."""
        from botocore import exceptions as boto

        try:
            return fn()
        except boto.ClientError as exc:
            err = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            raise error_for_aws_type(
                str(err.get("Code", "")), str(err.get("Message", "")), status
            ) from None
        except (boto.ReadTimeoutError, boto.ConnectTimeoutError):
            raise errors.DependencyTimeoutError(
                f"The key service did not answer within {self._timeout:g} s."
            ) from None
        except boto.NoCredentialsError:
            raise errors.AuthError(
                "MissingAuthenticationTokenException",
                "No AWS credentials were found in the credential chain.",
            ) from None
        except boto.BotoCoreError as exc:
            raise errors.DependencyTimeoutError(
                f"The key service could not be reached: {type(exc).__name__}."
            ) from None

    def encrypt(self, key_id: str, plaintext: bytes, context: Mapping[str, str]) -> Sealed:
        """Run ``Encrypt``."""
        response = self._run(
            lambda: self._client.encrypt(
                KeyId=key_id, Plaintext=plaintext, EncryptionContext=dict(context)
            )
        )
        return Sealed(bytes(response["CiphertextBlob"]), str(response["KeyId"]))

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str], key_id: str) -> bytes:
        """Run ``Decrypt`` naming ``key_id``."""
        response = self._run(
            lambda: self._client.decrypt(
                CiphertextBlob=ciphertext, EncryptionContext=dict(context), KeyId=key_id
            )
        )
        return bytes(response["Plaintext"])

    def key_version(self, key_id: str) -> KeyVersion:
        """Run ``DescribeKey``, then ``ListKeyRotations`` until the last page."""
        meta = self._run(lambda: self._client.describe_key(KeyId=key_id))["KeyMetadata"]
        arn = str(meta["Arn"])

        def page(request: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = self._run(lambda: self._client.list_key_rotations(**request))
            return result

        return KeyVersion(arn, 1 + count_rotations(page, arn))

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()

    def __repr__(self) -> str:
        return f"AwsKmsBackend(endpoint={self._client.meta.endpoint_url!r})"
