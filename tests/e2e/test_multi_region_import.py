"""Multi-Region keys with imported key material over HTTPS, driven by boto3 as on AWS KMS.

The client wraps its material under each key's own import parameters; the primary in
us-east-1 and its replica in eu-west-1 (the same server, signed for another region) each
take the same material, and only that material.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from strongroom.testing.http import AwsCredentials, aws_error
from strongroom.testing.key_import import wrap

EAST, WEST = "us-east-1", "eu-west-1"
ALGORITHM = "RSAES_OAEP_SHA_256"


@pytest.fixture(scope="module")
def east(client_of: Callable[..., Any], tenant_a: AwsCredentials) -> Any:
    return client_of(tenant_a, region=EAST)


@pytest.fixture(scope="module")
def west(client_of: Callable[..., Any], tenant_a: AwsCredentials) -> Any:
    return client_of(tenant_a, region=WEST)


def import_into(kms: Any, key_id: str, material: bytes) -> Any:
    """GetParametersForImport, wrap ``material`` as a boto3 user does, ImportKeyMaterial."""
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=ALGORITHM, WrappingKeySpec="RSA_2048"
    )
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], ALGORITHM, material),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )


def state(kms: Any, key_id: str) -> str:
    found: str = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
    return found


def test_imported_material_into_primary_and_replica(east: Any, west: Any) -> None:
    meta = east.create_key(MultiRegion=True, Origin="EXTERNAL")["KeyMetadata"]
    key_id = meta["KeyId"]
    assert (meta["Origin"], meta["KeyState"], meta["MultiRegion"]) == (
        "EXTERNAL",
        "PendingImport",
        True,
    )
    material = os.urandom(32)
    imported = import_into(east, key_id, material)
    assert state(east, key_id) == "Enabled"
    blob = east.encrypt(KeyId=key_id, Plaintext=b"from east")["CiphertextBlob"]

    replica = east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)["ReplicaKeyMetadata"]
    assert replica["Arn"].startswith(f"arn:aws:kms:{WEST}:")
    described = west.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (described["KeyState"], described["Origin"]) == ("PendingImport", "EXTERNAL")
    assert described["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    failure = aws_error(west.decrypt, CiphertextBlob=blob)
    assert (failure.code, failure.status) == ("KMSInvalidStateException", 400)

    failure = aws_error(lambda: import_into(west, key_id, os.urandom(32)))
    assert (failure.code, failure.status) == ("IncorrectKeyMaterialException", 400)
    assert state(west, key_id) == "PendingImport"

    again = import_into(west, key_id, material)
    assert again["KeyMaterialId"] == imported["KeyMaterialId"]
    assert state(west, key_id) == "Enabled"
    out = west.decrypt(CiphertextBlob=blob)
    assert (out["Plaintext"], out["KeyId"]) == (b"from east", replica["Arn"])
    back = west.encrypt(KeyId=key_id, Plaintext=b"from west")["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=back)["Plaintext"] == b"from west"

    west.delete_imported_key_material(KeyId=key_id)
    assert state(west, key_id) == "PendingImport"
    assert state(east, key_id) == "Enabled"
    assert east.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from east"
    assert east.decrypt(CiphertextBlob=back)["Plaintext"] == b"from west"
    failure = aws_error(west.decrypt, CiphertextBlob=back)
    assert failure.code == "KMSInvalidStateException"
