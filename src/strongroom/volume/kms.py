"""The KMS as the volume commands see it: five operations behind one small protocol.

:class:`VolumeKeys` is what :mod:`strongroom.volume` needs of a key service; it is the
AWS KMS API, so a Strongroom server and AWS KMS serve it alike. :func:`connect` picks the
client: :class:`~strongroom.volume.aws_json.AwsJsonKms` (standard library, fast start)
when the AWS chain is static, else :class:`BotoVolumeKeys` (boto3, through
:class:`~strongroom.data.kms_http.KmsHttpDataKeys`, for roles, SSO, instance
credentials...). Both raise the Strongroom error of the AWS error type they got.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from strongroom.volume.aws_chain import static_settings


class VolumeKeys(Protocol):
    """The KMS operations of the volume commands (AWS KMS API semantics)."""

    region: str
    endpoint_url: str

    def generate_data_key(
        self, key_id: str, context: Mapping[str, str]
    ) -> tuple[bytes, bytes, str]:
        """``GenerateDataKey`` (AES_256): ``(plaintext, ciphertext blob, key ARN)``."""
        ...

    def decrypt(self, blob: bytes, context: Mapping[str, str], key_id: str) -> bytes:
        """``Decrypt`` naming ``key_id``: the plaintext."""
        ...

    def re_encrypt(
        self,
        blob: bytes,
        source_context: Mapping[str, str],
        source_key: str,
        destination_key: str,
        destination_context: Mapping[str, str],
    ) -> tuple[bytes, str]:
        """``ReEncrypt``: ``(new blob, destination key ARN)``; the plaintext stays inside."""
        ...

    def describe_key(self, key_id: str) -> dict[str, Any]:
        """``DescribeKey``: the key's ``KeyMetadata``."""
        ...

    def disable_key(self, key_id: str) -> None:
        """``DisableKey``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class BotoVolumeKeys:
    """:class:`VolumeKeys` over a boto3 KMS client (the whole AWS chain)."""

    def __init__(self, client: Any) -> None:
        self._kms = client
        self.region = str(client.meta.region_name)
        self.endpoint_url = str(client.meta.endpoint_url)

    def _call(self, method: str, **request: Any) -> dict[str, Any]:
        from strongroom.data.kms_http import aws_errors

        with aws_errors():
            answer: dict[str, Any] = getattr(self._kms, method)(**request)
        return answer

    def generate_data_key(
        self, key_id: str, context: Mapping[str, str]
    ) -> tuple[bytes, bytes, str]:
        """``GenerateDataKey`` (AES_256)."""
        answer = self._call(
            "generate_data_key", KeyId=key_id, KeySpec="AES_256", EncryptionContext=dict(context)
        )
        return bytes(answer["Plaintext"]), bytes(answer["CiphertextBlob"]), str(answer["KeyId"])

    def decrypt(self, blob: bytes, context: Mapping[str, str], key_id: str) -> bytes:
        """``Decrypt`` naming the key."""
        answer = self._call(
            "decrypt", CiphertextBlob=blob, EncryptionContext=dict(context), KeyId=key_id
        )
        return bytes(answer["Plaintext"])

    def re_encrypt(
        self,
        blob: bytes,
        source_context: Mapping[str, str],
        source_key: str,
        destination_key: str,
        destination_context: Mapping[str, str],
    ) -> tuple[bytes, str]:
        """``ReEncrypt``."""
        answer = self._call(
            "re_encrypt",
            CiphertextBlob=blob,
            SourceEncryptionContext=dict(source_context),
            SourceKeyId=source_key,
            DestinationKeyId=destination_key,
            DestinationEncryptionContext=dict(destination_context),
        )
        return bytes(answer["CiphertextBlob"]), str(answer["KeyId"])

    def describe_key(self, key_id: str) -> dict[str, Any]:
        """``DescribeKey``."""
        return dict(self._call("describe_key", KeyId=key_id)["KeyMetadata"])

    def disable_key(self, key_id: str) -> None:
        """``DisableKey``."""
        self._call("disable_key", KeyId=key_id)

    def close(self) -> None:
        """Close the client's connection pool."""
        self._kms.close()

    def __repr__(self) -> str:
        return f"BotoVolumeKeys(endpoint_url={self.endpoint_url!r})"


def connect(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    ca_bundle: str | None = None,
    default_region: str = "",
) -> VolumeKeys:
    """A :class:`VolumeKeys` for the AWS chain plus what the options say.

    ``default_region`` (the region of a key ARN at hand) applies when the chain names no
    region.
    """
    settings = static_settings(
        endpoint_url=endpoint_url, region=region, profile=profile, ca_bundle=ca_bundle
    )
    if settings is not None:
        from strongroom.volume.aws_json import AwsJsonKms

        return AwsJsonKms(settings, default_region)
    from strongroom.data.kms_http import KmsHttpDataKeys

    chosen_region = region
    if chosen_region is None and default_region:
        import boto3

        if boto3.session.Session(profile_name=profile).region_name is None:
            chosen_region = default_region
    keys = KmsHttpDataKeys.connect(
        endpoint_url=endpoint_url, region=chosen_region, ca_bundle=ca_bundle, profile=profile
    )
    return BotoVolumeKeys(keys.kms_client)
