"""Multi-Region keys over HTTPS: boto3 clients of two regions on one server, the AWS CLI
with ``--region``, and the AWS Encryption SDK's multi-Region-aware master key providers.

A region is the SigV4 scope of a request: the same endpoint and credentials, signed for
``us-east-1`` or ``eu-west-1``, reach two regions of one server.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_encryption_sdk import CommitmentPolicy, EncryptionSDKClient
from aws_encryption_sdk.key_providers.kms import (
    MRKAwareDiscoveryAwsKmsMasterKeyProvider,
    MRKAwareStrictAwsKmsMasterKeyProvider,
)

from strongroom.testing.e2e_server import RunningServer
from strongroom.testing.http import (
    AwsCredentials,
    aws_error,
    botocore_session,
    client_environment,
)

EAST, WEST, ASIA = "us-east-1", "eu-west-1", "ap-southeast-2"


@pytest.fixture(scope="module")
def east(client_of: Callable[..., Any], tenant_a: AwsCredentials) -> Any:
    return client_of(tenant_a, region=EAST)


@pytest.fixture(scope="module")
def west(client_of: Callable[..., Any], tenant_a: AwsCredentials) -> Any:
    return client_of(tenant_a, region=WEST)


@pytest.fixture(scope="module")
def asia(client_of: Callable[..., Any], tenant_a: AwsCredentials) -> Any:
    return client_of(tenant_a, region=ASIA)


@pytest.fixture(scope="module")
def pair(east: Any) -> tuple[str, str, str]:
    """A primary key in us-east-1 replicated to eu-west-1: (key id, primary ARN, replica ARN)."""
    meta = east.create_key(MultiRegion=True, Description="primary")["KeyMetadata"]
    answer = east.replicate_key(KeyId=meta["KeyId"], ReplicaRegion=WEST, Description="replica")
    return meta["KeyId"], meta["Arn"], answer["ReplicaKeyMetadata"]["Arn"]


def test_create_and_replicate(east: Any, west: Any, tenant_a: AwsCredentials) -> None:
    meta = east.create_key(MultiRegion=True, Tags=[{"TagKey": "t", "TagValue": "v"}])["KeyMetadata"]
    key_id = meta["KeyId"]
    assert key_id.startswith("mrk-") and len(key_id) == 36
    assert meta["MultiRegion"] is True
    assert meta["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    answer = east.replicate_key(
        KeyId=meta["Arn"],
        ReplicaRegion=WEST,
        Description="in Ireland",
        Tags=[{"TagKey": "site", "TagValue": "eu"}],
    )
    replica = answer["ReplicaKeyMetadata"]
    arn = f"arn:aws:kms:{WEST}:{tenant_a.account_id}:key/{key_id}"
    assert (replica["Arn"], replica["KeyState"]) == (arn, "Creating")
    assert answer["ReplicaTags"] == [{"TagKey": "site", "TagValue": "eu"}]
    described = west.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["KeyState"] == "Enabled" and described["Description"] == "in Ireland"
    assert described["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "REPLICA",
        "PrimaryKey": {"Arn": meta["Arn"], "Region": EAST},
        "ReplicaKeys": [{"Arn": arn, "Region": WEST}],
    }
    assert west.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "site", "TagValue": "eu"}]
    assert east.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "t", "TagValue": "v"}]
    failure = aws_error(east.replicate_key, KeyId=key_id, ReplicaRegion=WEST)
    assert (failure.code, failure.status) == ("AlreadyExistsException", 400)


def test_encrypt_in_one_region_decrypt_in_the_other(
    east: Any, west: Any, pair: tuple[str, str, str]
) -> None:
    key_id, primary_arn, replica_arn = pair
    blob = east.encrypt(KeyId=key_id, Plaintext=b"from the east", EncryptionContext={"a": "b"})
    out = west.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert (out["Plaintext"], out["KeyId"]) == (b"from the east", replica_arn)
    data_key = west.generate_data_key(KeyId=replica_arn, KeySpec="AES_256")
    out = east.decrypt(CiphertextBlob=data_key["CiphertextBlob"], KeyId=primary_arn)
    assert out["Plaintext"] == data_key["Plaintext"]
    failure = aws_error(west.decrypt, CiphertextBlob=blob["CiphertextBlob"])  # context missing
    assert failure.code == "InvalidCiphertextException"


def test_a_key_is_invisible_in_other_regions(
    east: Any, asia: Any, pair: tuple[str, str, str]
) -> None:
    key_id, _, replica_arn = pair
    for call, params in (
        (asia.describe_key, {"KeyId": key_id}),
        (east.describe_key, {"KeyId": replica_arn}),
        (asia.encrypt, {"KeyId": key_id, "Plaintext": b"x"}),
    ):
        failure = aws_error(call, **params)
        assert (failure.code, failure.status) == ("NotFoundException", 400), failure.message
    assert key_id not in [k["KeyId"] for k in asia.list_keys()["Keys"]]
    blob = east.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert aws_error(asia.decrypt, CiphertextBlob=blob).code == "InvalidCiphertextException"


def test_rotation_of_the_primary_reaches_the_replica(
    east: Any, west: Any, pair: tuple[str, str, str]
) -> None:
    key_id, _, _ = pair
    before = west.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    failure = aws_error(west.rotate_key_on_demand, KeyId=key_id)
    assert failure.code == "UnsupportedOperationException"
    east.rotate_key_on_demand(KeyId=key_id)
    east.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    status = west.get_key_rotation_status(KeyId=key_id)
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 180)
    rotations = west.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"]
    assert (
        west.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
        == east.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
        == rotations[0]["KeyMaterialId"]
    )
    after = west.encrypt(KeyId=key_id, Plaintext=b"after")["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=before)["Plaintext"] == b"before"
    assert east.decrypt(CiphertextBlob=after)["Plaintext"] == b"after"


def test_aliases_are_per_region(east: Any, west: Any, pair: tuple[str, str, str]) -> None:
    key_id, primary_arn, _ = pair
    other = west.create_key(Description="single-Region, west")["KeyMetadata"]
    east.create_alias(AliasName="alias/orders", TargetKeyId=key_id)
    west.create_alias(AliasName="alias/orders", TargetKeyId=other["KeyId"])
    assert east.describe_key(KeyId="alias/orders")["KeyMetadata"]["Arn"] == primary_arn
    assert west.describe_key(KeyId="alias/orders")["KeyMetadata"]["Arn"] == other["Arn"]
    west.create_alias(AliasName="alias/orders-mrk", TargetKeyId=key_id)
    blob = east.encrypt(KeyId="alias/orders", Plaintext=b"aliased")["CiphertextBlob"]
    out = west.decrypt(CiphertextBlob=blob, KeyId="alias/orders-mrk")
    assert out["Plaintext"] == b"aliased"
    assert aws_error(east.describe_key, KeyId="alias/orders-mrk").code == "NotFoundException"


def test_deletion_waits_for_the_replicas(east: Any, west: Any) -> None:
    key_id = east.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    answer = east.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert answer["KeyState"] == "PendingReplicaDeletion" and "DeletionDate" not in answer
    meta = east.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["PendingDeletionWindowInDays"]) == (
        "PendingReplicaDeletion",
        7,
    )
    assert aws_error(east.encrypt, KeyId=key_id, Plaintext=b"x").code == "KMSInvalidStateException"
    replica = west.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert replica["KeyState"] == "PendingDeletion" and "DeletionDate" in replica
    east.cancel_key_deletion(KeyId=key_id)
    assert east.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


def test_update_primary_region(east: Any, west: Any) -> None:
    meta = east.create_key(MultiRegion=True)["KeyMetadata"]
    key_id = meta["KeyId"]
    replica_arn = east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)["ReplicaKeyMetadata"]["Arn"]
    assert aws_error(west.update_primary_region, KeyId=key_id, PrimaryRegion=EAST).code == (
        "UnsupportedOperationException"
    )
    east.update_primary_region(KeyId=key_id, PrimaryRegion=WEST)
    west_config = west.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    east_config = east.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert west_config["MultiRegionKeyType"] == "PRIMARY"
    assert east_config["MultiRegionKeyType"] == "REPLICA"
    assert east_config["PrimaryKey"] == {"Arn": replica_arn, "Region": WEST}
    assert west_config["ReplicaKeys"] == [{"Arn": meta["Arn"], "Region": EAST}]
    # the old primary, now a replica, may go first
    assert east.schedule_key_deletion(KeyId=key_id)["KeyState"] == "PendingDeletion"


# -- the AWS CLI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws(
    server: RunningServer, tenant_a: AwsCredentials, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Any]:
    """Run ``aws kms <args> --endpoint-url <server>`` as tenant A and parse its JSON."""
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed")
    home = tmp_path_factory.mktemp("aws-home")
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {
        **base,
        "HOME": str(home),
        **client_environment(server.endpoint, tenant_a, EAST, endpoint_variable=False),
    }

    def run(*args: str) -> Any:
        done = subprocess.run(
            ["aws", "kms", *args, "--endpoint-url", server.endpoint.url, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    return run


def test_aws_cli_across_regions(aws: Callable[..., Any], tmp_path: Path) -> None:
    meta = aws("create-key", "--multi-region", "--region", EAST)["KeyMetadata"]
    key_id = meta["KeyId"]
    replica = aws("replicate-key", "--key-id", key_id, "--replica-region", WEST, "--region", EAST)
    assert replica["ReplicaKeyMetadata"]["Arn"].startswith(f"arn:aws:kms:{WEST}:")
    described = aws("describe-key", "--key-id", key_id, "--region", WEST)["KeyMetadata"]
    assert described["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"\x00cli bytes\xff")
    sealed = aws(
        "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{plain}", "--region", WEST
    )["CiphertextBlob"]
    blob = tmp_path / "blob.bin"
    blob.write_bytes(base64.b64decode(sealed))
    opened = aws("decrypt", "--ciphertext-blob", f"fileb://{blob}", "--region", EAST)
    assert base64.b64decode(opened["Plaintext"]) == plain.read_bytes()
    assert opened["KeyId"] == meta["Arn"]
    aws("update-primary-region", "--key-id", key_id, "--primary-region", WEST, "--region", EAST)
    now = aws("describe-key", "--key-id", key_id, "--region", WEST)["KeyMetadata"]
    assert now["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"


# -- the AWS Encryption SDK ------------------------------------------------------------------


@pytest.fixture(scope="module")
def session(
    server: RunningServer, tenant_a: AwsCredentials, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    config = tmp_path_factory.mktemp("sdk") / "aws-config"
    return botocore_session(server.endpoint, tenant_a, EAST, config)


@pytest.fixture(scope="module")
def providers() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for provider in made:
        for client in getattr(provider, "_regional_clients", {}).values():
            client.close()


def test_encryption_sdk_decrypts_with_the_replica(
    east: Any, session: Any, providers: list[Any], pair: tuple[str, str, str]
) -> None:
    """The SDK encrypts under the primary (us-east-1) and decrypts through the replica
    (eu-west-1): its multi-Region-aware providers call Decrypt in the replica's region."""
    _, primary_arn, replica_arn = pair
    sdk = EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    writer = MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[primary_arn], botocore_session=session)
    reader = MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[replica_arn], botocore_session=session)
    discovery = MRKAwareDiscoveryAwsKmsMasterKeyProvider(
        botocore_session=session, discovery_region=WEST
    )
    providers.extend([writer, reader, discovery])
    message = os.urandom(200_000)
    ciphertext, header = sdk.encrypt(
        source=message, key_provider=writer, encryption_context={"site": "east"}
    )
    [wrapped] = list(header.encrypted_data_keys)
    assert wrapped.key_provider.key_info.decode() == primary_arn
    east.disable_key(KeyId=primary_arn)  # only the replica in eu-west-1 can answer now
    try:
        plaintext, _ = sdk.decrypt(source=ciphertext, key_provider=reader)
        assert plaintext == message
        plaintext, _ = sdk.decrypt(source=ciphertext, key_provider=discovery)
        assert plaintext == message
    finally:
        east.enable_key(KeyId=primary_arn)
