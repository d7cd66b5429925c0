"""The AWS Encryption SDK for Python, unchanged, with its KMS master key provider on Strongroom.

The SDK makes its own KMS clients from a botocore session (region taken from the key ARN),
so the session is pointed at the server the way a user would do it: a shared config file
whose ``services`` section names the KMS endpoint, and the server's CA as ``ca_bundle``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from typing import Any

import aws_encryption_sdk
import pytest
from aws_encryption_sdk import (
    CommitmentPolicy,
    DiscoveryAwsKmsMasterKeyProvider,
    EncryptionSDKClient,
    StrictAwsKmsMasterKeyProvider,
)
from aws_encryption_sdk.exceptions import (
    AWSEncryptionSDKClientError,
    DecryptKeyError,
    MasterKeyProviderError,
)
from aws_encryption_sdk.key_providers.kms import DiscoveryFilter
from cryptography.exceptions import InvalidTag

from strongroom.testing.e2e_server import RunningServer
from strongroom.testing.http import AwsCredentials, botocore_session

REGION = "eu-west-1"
MESSAGE_BYTES = 10 * 1024 * 1024
CONTEXT = {"purpose": "e2e", "dataset": "ten-mebibytes"}


@pytest.fixture(scope="module")
def session(
    server: RunningServer, tenant_a: AwsCredentials, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """Tenant A's botocore session, its KMS endpoint set to the server."""
    config = tmp_path_factory.mktemp("sdk") / "aws-config"
    return botocore_session(server.endpoint, tenant_a, REGION, config)


@pytest.fixture(scope="module")
def provider_for(session: Any) -> Iterator[Callable[[str], Any]]:
    """Make a strict master key provider for one key ARN (its clients closed at the end)."""
    made: list[Any] = []

    def make(key_arn: str) -> Any:
        provider = StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=session)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        for client in getattr(provider, "_regional_clients", {}).values():
            client.close()


@pytest.fixture(scope="module")
def sdk() -> EncryptionSDKClient:
    """An SDK client that requires key commitment on encryption and decryption."""
    return EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


@pytest.fixture(scope="module")
def key_arn(kms: Any) -> str:
    arn: str = kms.create_key(Description="Encryption SDK key")["KeyMetadata"]["Arn"]
    return arn


@pytest.fixture(scope="module")
def message() -> bytes:
    return os.urandom(MESSAGE_BYTES)


@pytest.fixture(scope="module")
def sealed(
    sdk: EncryptionSDKClient,
    provider_for: Callable[[str], Any],
    key_arn: str,
    message: bytes,
) -> tuple[bytes, Any]:
    """The 10 MiB message encrypted by the SDK under the Strongroom key, and its header."""
    ciphertext, header = sdk.encrypt(
        source=message, key_provider=provider_for(key_arn), encryption_context=CONTEXT
    )
    return ciphertext, header


def test_ten_mebibytes_round_trip(
    sdk: EncryptionSDKClient,
    provider_for: Callable[[str], Any],
    key_arn: str,
    message: bytes,
    sealed: tuple[bytes, Any],
) -> None:
    ciphertext, header = sealed
    assert len(ciphertext) > MESSAGE_BYTES
    assert message[:4096] not in ciphertext
    assert header.algorithm.is_committing()
    assert CONTEXT.items() <= header.encryption_context.items()
    plaintext, decrypt_header = sdk.decrypt(source=ciphertext, key_provider=provider_for(key_arn))
    assert plaintext == message
    assert CONTEXT.items() <= decrypt_header.encryption_context.items()


def test_the_data_key_is_wrapped_by_strongroom(
    kms: Any, key_arn: str, sealed: tuple[bytes, Any]
) -> None:
    _, header = sealed
    [wrapped] = list(header.encrypted_data_keys)
    assert wrapped.key_provider.provider_id == "aws-kms"
    assert wrapped.key_provider.key_info.decode() == key_arn
    # The SDK binds the whole encryption context (with its signing public key) to the
    # data key: Strongroom's Decrypt sees exactly what the SDK sent to Encrypt.
    out = kms.decrypt(
        CiphertextBlob=wrapped.encrypted_data_key,
        EncryptionContext=header.encryption_context,
        KeyId=key_arn,
    )
    assert out["KeyId"] == key_arn
    assert len(out["Plaintext"]) == header.algorithm.kdf_input_len


def test_streaming_round_trip(
    sdk: EncryptionSDKClient, provider_for: Callable[[str], Any], key_arn: str, message: bytes
) -> None:
    provider = provider_for(key_arn)
    sink = io.BytesIO()
    with sdk.stream(
        mode="e",
        source=io.BytesIO(message),
        key_provider=provider,
        encryption_context=CONTEXT,
        frame_length=1024 * 1024,
    ) as encryptor:
        for chunk in encryptor:
            sink.write(chunk)
    out = io.BytesIO()
    with sdk.stream(mode="d", source=io.BytesIO(sink.getvalue()), key_provider=provider) as dec:
        for chunk in dec:
            out.write(chunk)
    assert out.getvalue() == message


def test_encrypt_by_alias_arn_decrypt_by_key_arn(
    kms: Any, sdk: EncryptionSDKClient, provider_for: Callable[[str], Any], key_arn: str
) -> None:
    # The SDK records the key ARN KMS answers Encrypt with, and strict decryption needs it.
    alias = "alias/sdk-e2e"
    kms.create_alias(AliasName=alias, TargetKeyId=key_arn)
    alias_arn = key_arn.split(":key/")[0] + ":" + alias
    ciphertext, header = sdk.encrypt(source=b"via alias", key_provider=provider_for(alias_arn))
    [wrapped] = list(header.encrypted_data_keys)
    assert wrapped.key_provider.key_info.decode() == key_arn
    assert sdk.decrypt(source=ciphertext, key_provider=provider_for(key_arn))[0] == b"via alias"


def test_discovery_decryption_filters_by_account(
    session: Any,
    sdk: EncryptionSDKClient,
    tenant_a: AwsCredentials,
    message: bytes,
    sealed: tuple[bytes, Any],
) -> None:
    made = []
    for accounts, works in (([tenant_a.account_id], True), (["000000000000"], False)):
        provider = DiscoveryAwsKmsMasterKeyProvider(
            botocore_session=session,
            discovery_filter=DiscoveryFilter(account_ids=accounts, partition="aws"),
        )
        made.append(provider)
        if works:
            assert sdk.decrypt(source=sealed[0], key_provider=provider)[0] == message
        else:  # the filter reads the account from the ARN KMS returned: it must be ours
            with pytest.raises((DecryptKeyError, MasterKeyProviderError)):
                sdk.decrypt(source=sealed[0], key_provider=provider)
    for provider in made:
        for client in getattr(provider, "_regional_clients", {}).values():
            client.close()


def test_another_key_cannot_decrypt(
    kms: Any,
    sdk: EncryptionSDKClient,
    provider_for: Callable[[str], Any],
    sealed: tuple[bytes, Any],
) -> None:
    other = kms.create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(DecryptKeyError):
        sdk.decrypt(source=sealed[0], key_provider=provider_for(other))


def test_a_disabled_key_cannot_decrypt(
    kms: Any, sdk: EncryptionSDKClient, provider_for: Callable[[str], Any]
) -> None:
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    ciphertext, _ = sdk.encrypt(source=b"short", key_provider=provider_for(arn))
    kms.disable_key(KeyId=arn)
    with pytest.raises(DecryptKeyError):
        sdk.decrypt(source=ciphertext, key_provider=provider_for(arn))
    kms.enable_key(KeyId=arn)
    assert sdk.decrypt(source=ciphertext, key_provider=provider_for(arn))[0] == b"short"


def test_tampering_is_detected(
    sdk: EncryptionSDKClient,
    provider_for: Callable[[str], Any],
    key_arn: str,
    sealed: tuple[bytes, Any],
) -> None:
    ciphertext = bytearray(sealed[0])
    ciphertext[len(ciphertext) // 2] ^= 0x01
    # A flipped body byte fails the frame's AES-GCM tag (the SDK lets InvalidTag through).
    with pytest.raises((AWSEncryptionSDKClientError, InvalidTag)):
        sdk.decrypt(source=bytes(ciphertext), key_provider=provider_for(key_arn))


def test_sdk_version_is_the_one_the_issue_names() -> None:
    assert int(aws_encryption_sdk.__version__.split(".")[0]) >= 4
