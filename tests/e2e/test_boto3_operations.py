"""boto3 against a Strongroom server process over HTTPS: keys, symmetric crypto, aliases,
tags, rotation, deletion, policies, grants, DryRun and the AWS error codes and statuses.

Asymmetric, HMAC, data key pair and import operations are in test_boto3_asymmetric.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from strongroom.kms.ops import HANDLERS
from strongroom.testing.e2e_server import RunningServer, add_access_key, revoke_access_key
from strongroom.testing.http import AwsCredentials, aws_error, request_counts

REGION = "eu-west-1"
ARN = re.compile(r"arn:aws:kms:eu-west-1:(\d{12}):key/([0-9a-f-]{36})")
RSA_SIGNING = [
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
]
RSA_ENCRYPTION = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
SPECS: list[tuple[str, str, str, list[str]]] = [
    ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "EncryptionAlgorithms", ["SYMMETRIC_DEFAULT"]),
    ("HMAC_224", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_224"]),
    ("HMAC_256", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_256"]),
    ("HMAC_384", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_384"]),
    ("HMAC_512", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_512"]),
    ("RSA_2048", "ENCRYPT_DECRYPT", "EncryptionAlgorithms", RSA_ENCRYPTION),
    ("RSA_2048", "SIGN_VERIFY", "SigningAlgorithms", RSA_SIGNING),
    ("RSA_3072", "ENCRYPT_DECRYPT", "EncryptionAlgorithms", RSA_ENCRYPTION),
    ("RSA_4096", "SIGN_VERIFY", "SigningAlgorithms", RSA_SIGNING),
    ("ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_P384", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_384"]),
    ("ECC_NIST_P521", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_512"]),
    ("ECC_SECG_P256K1", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_P256", "KEY_AGREEMENT", "KeyAgreementAlgorithms", ["ECDH"]),
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", "SigningAlgorithms", ["ED25519_SHA_512"]),
    ("ML_DSA_44", "SIGN_VERIFY", "SigningAlgorithms", ["ML_DSA_SHAKE_256"]),
    ("ML_DSA_87", "SIGN_VERIFY", "SigningAlgorithms", ["ML_DSA_SHAKE_256"]),
]


def new_key(kms: Any, **params: Any) -> dict[str, Any]:
    meta: dict[str, Any] = kms.create_key(**params)["KeyMetadata"]
    return meta


@pytest.fixture(scope="module")
def key(kms: Any) -> dict[str, Any]:
    """A symmetric key of tenant A, shared by tests that do not change it."""
    return new_key(kms, Description="shared test key")


@pytest.fixture(scope="module")
def other_key(kms: Any) -> dict[str, Any]:
    """A second symmetric key of tenant A."""
    return new_key(kms)


# -- CreateKey and DescribeKey ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "usage", "member", "algorithms"),
    SPECS,
    ids=[f"{s}-{u}" for s, u, _, _ in SPECS],
)
def test_create_key_of_every_spec(
    kms: Any,
    tenant_a: AwsCredentials,
    spec: str,
    usage: str,
    member: str,
    algorithms: list[str],
) -> None:
    meta = new_key(kms, KeySpec=spec, KeyUsage=usage, Description=f"{spec} key")
    match = ARN.fullmatch(meta["Arn"])
    assert match is not None
    assert match.groups() == (tenant_a.account_id, meta["KeyId"])
    assert meta["AWSAccountId"] == tenant_a.account_id
    assert meta["KeySpec"] == meta["CustomerMasterKeySpec"] == spec
    assert meta["KeyUsage"] == usage
    assert meta[member] == algorithms
    assert meta["KeyState"] == "Enabled"
    assert meta["Enabled"] is True
    assert meta["Origin"] == "AWS_KMS"
    assert meta["KeyManager"] == "CUSTOMER"
    assert meta["MultiRegion"] is False
    assert isinstance(meta["CreationDate"], datetime)
    assert abs(meta["CreationDate"] - datetime.now(UTC)) < timedelta(minutes=5)
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described == meta


def test_create_key_defaults_to_a_symmetric_encryption_key(kms: Any) -> None:
    meta = new_key(kms)
    assert (meta["KeySpec"], meta["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert meta["Description"] == ""
    assert "DeletionDate" not in meta


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"KeySpec": "NOT_A_SPEC"}, "ValidationException"),
        ({"KeySpec": "HMAC_256", "KeyUsage": "ENCRYPT_DECRYPT"}, "ValidationException"),
        ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "ENCRYPT_DECRYPT"}, "ValidationException"),
        ({"KeySpec": "ECC_NIST_P256"}, "ValidationException"),
        ({"KeySpec": "RSA_2048", "CustomerMasterKeySpec": "RSA_2048"}, "ValidationException"),
        ({"Description": "x" * 8193}, "ValidationException"),
        ({"Policy": "{not json"}, "MalformedPolicyDocumentException"),
        ({"Tags": [{"TagKey": "aws:reserved", "TagValue": "v"}]}, "TagException"),
    ],
)
def test_create_key_refusals(loose: Any, params: dict[str, Any], code: str) -> None:
    failure = aws_error(loose.create_key, **params)
    assert (failure.code, failure.status) == (code, 400)
    assert failure.message


def test_key_is_named_by_id_arn_alias_and_alias_arn(kms: Any, key: dict[str, Any]) -> None:
    alias = f"alias/forms-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    alias_arn = key["Arn"].rsplit(":", 1)[0] + ":" + alias
    for name in (key["KeyId"], key["Arn"], alias, alias_arn):
        assert kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == key["Arn"]
        blob = kms.encrypt(KeyId=name, Plaintext=b"by " + name.encode())
        assert blob["KeyId"] == key["Arn"]
        out = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], KeyId=name)
        assert out["Plaintext"] == b"by " + name.encode()


def test_missing_keys_are_not_found(kms: Any, tenant_a: AwsCredentials) -> None:
    unknown = str(uuid.uuid4())
    failure = aws_error(kms.describe_key, KeyId=unknown)
    assert (failure.code, failure.status) == ("NotFoundException", 400)
    assert failure.message == (
        f"Key 'arn:aws:kms:{REGION}:{tenant_a.account_id}:key/{unknown}' does not exist"
    )
    failure = aws_error(kms.encrypt, KeyId="alias/never-made", Plaintext=b"x")
    assert (failure.code, failure.status) == ("NotFoundException", 400)
    assert failure.message == (
        f"Alias arn:aws:kms:{REGION}:{tenant_a.account_id}:alias/never-made is not found."
    )


def test_keys_live_in_their_region(
    kms: Any, client_of: Callable[..., Any], tenant_a: AwsCredentials, key: dict[str, Any]
) -> None:
    elsewhere = client_of(tenant_a, region="ap-southeast-2")
    for name in (key["KeyId"], key["Arn"]):
        failure = aws_error(elsewhere.describe_key, KeyId=name)
        assert (failure.code, failure.status) == ("NotFoundException", 400)
    assert key["KeyId"] not in {k["KeyId"] for k in elsewhere.list_keys()["Keys"]}
    local = new_key(elsewhere)
    assert local["Arn"].startswith(f"arn:aws:kms:ap-southeast-2:{tenant_a.account_id}:key/")
    assert local["KeyId"] not in {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}


# -- ListKeys and pagination -----------------------------------------------------------------


def test_list_keys_pages_with_the_boto3_paginator(
    new_tenant: Callable[[], AwsCredentials], client_of: Callable[..., Any]
) -> None:
    fresh = client_of(new_tenant())
    made = {new_key(fresh)["KeyId"] for _ in range(5)}
    pages = list(fresh.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Keys"]) for p in pages] == [2, 2, 1]
    assert [p["Truncated"] for p in pages] == [True, True, False]
    listed = [k["KeyId"] for p in pages for k in p["Keys"]]
    assert sorted(listed) == sorted(made)
    for page in pages:
        for entry in page["Keys"]:
            assert entry["KeyArn"].endswith(":key/" + entry["KeyId"])
    assert "NextMarker" not in pages[-1]


def test_list_keys_refuses_bad_limits_and_markers(loose: Any) -> None:
    for limit in (0, 1001):
        failure = aws_error(loose.list_keys, Limit=limit)
        assert (failure.code, failure.status) == ("ValidationException", 400)
    failure = aws_error(loose.list_keys, Marker="not-a-marker")
    assert (failure.code, failure.status) == ("InvalidMarkerException", 400)


# -- Encrypt, Decrypt, ReEncrypt, data keys, randomness --------------------------------------


def test_encrypt_decrypt_round_trip_with_context(kms: Any, key: dict[str, Any]) -> None:
    context = {"purpose": "e2e", "tenant": "a"}
    out = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret", EncryptionContext=context)
    assert out["KeyId"] == key["Arn"]
    assert out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert b"secret" not in out["CiphertextBlob"]
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=context)
    assert back["Plaintext"] == b"secret"
    assert back["KeyId"] == key["Arn"]
    assert back["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    largest = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"\x00" * 4096)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=largest)["Plaintext"] == b"\x00" * 4096


def test_decrypt_refuses_wrong_context_key_and_blob(
    kms: Any, key: dict[str, Any], other_key: dict[str, Any]
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext={"a": "1"})[
        "CiphertextBlob"
    ]
    for context in ({}, {"a": "2"}, {"a": "1", "b": "2"}):
        failure = aws_error(kms.decrypt, CiphertextBlob=blob, EncryptionContext=context)
        assert (failure.code, failure.status) == ("InvalidCiphertextException", 400)
    failure = aws_error(
        kms.decrypt, CiphertextBlob=blob, EncryptionContext={"a": "1"}, KeyId=other_key["KeyId"]
    )
    assert (failure.code, failure.status) == ("IncorrectKeyException", 400)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    failure = aws_error(kms.decrypt, CiphertextBlob=tampered, EncryptionContext={"a": "1"})
    assert (failure.code, failure.status) == ("InvalidCiphertextException", 400)
    failure = aws_error(kms.decrypt, CiphertextBlob=b"not a ciphertext blob")
    assert (failure.code, failure.status) == ("InvalidCiphertextException", 400)


def test_encrypt_refusals(loose: Any, key: dict[str, Any]) -> None:
    failure = aws_error(loose.encrypt, KeyId=key["KeyId"], Plaintext=b"x" * 4097)
    assert (failure.code, failure.status) == ("ValidationException", 400)
    failure = aws_error(loose.encrypt, KeyId=key["KeyId"], Plaintext=b"")
    assert (failure.code, failure.status) == ("ValidationException", 400)
    failure = aws_error(
        loose.encrypt,
        KeyId=key["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)
    mac_key = new_key(loose, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    failure = aws_error(loose.encrypt, KeyId=mac_key["KeyId"], Plaintext=b"x")
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)


def test_re_encrypt_moves_a_ciphertext_to_another_key(
    kms: Any, key: dict[str, Any], other_key: dict[str, Any]
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"move me", EncryptionContext={"k": "v"})[
        "CiphertextBlob"
    ]
    out = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"k": "v"},
        DestinationKeyId=other_key["KeyId"],
        DestinationEncryptionContext={"k": "w"},
    )
    assert out["SourceKeyId"] == key["Arn"]
    assert out["KeyId"] == other_key["Arn"]
    assert out["SourceEncryptionAlgorithm"] == out["DestinationEncryptionAlgorithm"]
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"k": "w"})
    assert (back["Plaintext"], back["KeyId"]) == (b"move me", other_key["Arn"])
    failure = aws_error(
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceEncryptionContext={"k": "other"},
        DestinationKeyId=other_key["KeyId"],
    )
    assert failure.code == "InvalidCiphertextException"


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"KeySpec": "AES_256"}, 32),
        ({"KeySpec": "AES_128"}, 16),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 1024}, 1024),
    ],
)
def test_generate_data_key(
    kms: Any, key: dict[str, Any], params: dict[str, Any], size: int
) -> None:
    context = {"bucket": "b1"}
    out = kms.generate_data_key(KeyId=key["KeyId"], EncryptionContext=context, **params)
    assert len(out["Plaintext"]) == size
    assert out["KeyId"] == key["Arn"]
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=context)
    assert back["Plaintext"] == out["Plaintext"]
    bare = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], **params)
    assert "Plaintext" not in bare
    assert len(kms.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == size


def test_generate_data_key_refusals(loose: Any, key: dict[str, Any]) -> None:
    for params in (
        {},
        {"KeySpec": "AES_256", "NumberOfBytes": 32},
        {"NumberOfBytes": 0},
        {"NumberOfBytes": 1025},
        {"KeySpec": "AES_512"},
    ):
        failure = aws_error(loose.generate_data_key, KeyId=key["KeyId"], **params)
        assert (failure.code, failure.status) == ("ValidationException", 400), params


def test_generate_random(kms: Any, loose: Any) -> None:
    sizes = [len(kms.generate_random(NumberOfBytes=n)["Plaintext"]) for n in (1, 32, 1024)]
    assert sizes == [1, 32, 1024]
    assert kms.generate_random(NumberOfBytes=32) != kms.generate_random(NumberOfBytes=32)
    for count in (0, 1025):
        failure = aws_error(loose.generate_random, NumberOfBytes=count)
        assert (failure.code, failure.status) == ("ValidationException", 400)


# -- aliases ---------------------------------------------------------------------------------


def test_alias_lifecycle(
    kms: Any, key: dict[str, Any], other_key: dict[str, Any], tenant_a: AwsCredentials
) -> None:
    name = f"alias/life-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=name, TargetKeyId=key["Arn"])
    listed = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    entry = next(a for a in listed if a["AliasName"] == name)
    assert entry["TargetKeyId"] == key["KeyId"]
    assert entry["AliasArn"] == f"arn:aws:kms:{REGION}:{tenant_a.account_id}:{name}"
    assert isinstance(entry["CreationDate"], datetime)
    failure = aws_error(kms.create_alias, AliasName=name, TargetKeyId=other_key["KeyId"])
    assert (failure.code, failure.status) == ("AlreadyExistsException", 400)
    kms.update_alias(AliasName=name, TargetKeyId=other_key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == other_key["KeyId"]
    assert name not in {a["AliasName"] for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]}
    kms.delete_alias(AliasName=name)
    failure = aws_error(kms.describe_key, KeyId=name)
    assert failure.code == "NotFoundException"
    failure = aws_error(kms.delete_alias, AliasName=name)
    assert (failure.code, failure.status) == ("NotFoundException", 400)
    failure = aws_error(kms.update_alias, AliasName=name, TargetKeyId=key["KeyId"])
    assert (failure.code, failure.status) == ("NotFoundException", 400)


def test_alias_refusals(kms: Any, loose: Any, key: dict[str, Any]) -> None:
    failure = aws_error(loose.create_alias, AliasName="no-prefix", TargetKeyId=key["KeyId"])
    assert (failure.code, failure.status) == ("ValidationException", 400)
    failure = aws_error(kms.create_alias, AliasName="alias/aws/mine", TargetKeyId=key["KeyId"])
    assert failure.status == 400
    assert failure.code in ("InvalidAliasNameException", "NotAuthorizedException")
    failure = aws_error(kms.create_alias, AliasName="alias/x", TargetKeyId="alias/other")
    assert (failure.code, failure.status) == ("ValidationException", 400)
    mac = new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    name = f"alias/kind-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    failure = aws_error(kms.update_alias, AliasName=name, TargetKeyId=mac["KeyId"])
    assert (failure.code, failure.status) == ("ValidationException", 400)


def test_list_aliases_pages(
    new_tenant: Callable[[], AwsCredentials], client_of: Callable[..., Any]
) -> None:
    fresh = client_of(new_tenant())
    target = new_key(fresh)["KeyId"]
    names = {f"alias/page-{i}" for i in range(5)}
    for name in names:
        fresh.create_alias(AliasName=name, TargetKeyId=target)
    pages = list(fresh.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Aliases"]) for p in pages] == [2, 2, 1]
    assert {a["AliasName"] for p in pages for a in p["Aliases"]} == names


# -- tags, description -----------------------------------------------------------------------


def test_tags(kms: Any) -> None:
    meta = new_key(kms, Tags=[{"TagKey": "team", "TagValue": "red"}])
    kms.tag_resource(
        KeyId=meta["Arn"],
        Tags=[{"TagKey": "team", "TagValue": "blue"}, {"TagKey": "env", "TagValue": ""}],
    )
    tags = kms.list_resource_tags(KeyId=meta["KeyId"])
    assert tags["Tags"] == [
        {"TagKey": "env", "TagValue": ""},
        {"TagKey": "team", "TagValue": "blue"},
    ]
    assert tags["Truncated"] is False
    kms.untag_resource(KeyId=meta["KeyId"], TagKeys=["env", "absent"])
    assert kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"] == [
        {"TagKey": "team", "TagValue": "blue"}
    ]
    failure = aws_error(
        kms.tag_resource, KeyId=meta["KeyId"], Tags=[{"TagKey": "aws:x", "TagValue": "v"}]
    )
    assert (failure.code, failure.status) == ("TagException", 400)
    many = [{"TagKey": f"k{i:02d}", "TagValue": str(i)} for i in range(5)]
    kms.tag_resource(KeyId=meta["KeyId"], Tags=many)
    pages = list(
        kms.get_paginator("list_resource_tags").paginate(
            KeyId=meta["KeyId"], PaginationConfig={"PageSize": 2}
        )
    )
    assert [t["TagKey"] for p in pages for t in p["Tags"]] == [
        *(t["TagKey"] for t in many),
        "team",
    ]


def test_update_key_description(kms: Any) -> None:
    meta = new_key(kms, Description="before")
    kms.update_key_description(KeyId=meta["KeyId"], Description="after")
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["Description"] == "after"


# -- state: enable, disable, deletion --------------------------------------------------------


def test_disabled_keys_refuse_cryptography(kms: Any) -> None:
    meta = new_key(kms)
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=meta["KeyId"])
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert (described["KeyState"], described["Enabled"]) == ("Disabled", False)
    failure = aws_error(kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x")
    assert (failure.code, failure.status) == ("DisabledException", 400)
    assert failure.message == f"{meta['Arn']} is disabled."
    assert aws_error(kms.decrypt, CiphertextBlob=blob).code == "DisabledException"
    kms.enable_key(KeyId=meta["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_scheduled_deletion_and_cancellation(kms: Any, loose: Any) -> None:
    meta = new_key(kms)
    for days in (6, 31):
        failure = aws_error(
            loose.schedule_key_deletion, KeyId=meta["KeyId"], PendingWindowInDays=days
        )
        assert (failure.code, failure.status) == ("ValidationException", 400)
    failure = aws_error(kms.cancel_key_deletion, KeyId=meta["KeyId"])
    assert (failure.code, failure.status) == ("KMSInvalidStateException", 400)
    out = kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
    assert (out["KeyId"], out["KeyState"], out["PendingWindowInDays"]) == (
        meta["Arn"],
        "PendingDeletion",
        7,
    )
    assert abs(out["DeletionDate"] - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion"
    assert described["PendingDeletionWindowInDays"] == 7
    failure = aws_error(kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x")
    assert (failure.code, failure.status) == ("KMSInvalidStateException", 400)
    assert failure.message == f"{meta['Arn']} is pending deletion."
    assert kms.cancel_key_deletion(KeyId=meta["KeyId"])["KeyId"] == meta["Arn"]
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Disabled"
    assert "DeletionDate" not in described
    kms.enable_key(KeyId=meta["KeyId"])
    assert kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")["KeyId"] == meta["Arn"]


# -- rotation --------------------------------------------------------------------------------


def test_rotation(kms: Any, loose: Any) -> None:
    meta = new_key(kms)
    status = kms.get_key_rotation_status(KeyId=meta["Arn"])
    assert (status["KeyRotationEnabled"], status["KeyId"]) == (False, meta["KeyId"])
    kms.enable_key_rotation(KeyId=meta["KeyId"], RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=meta["KeyId"])
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 90
    assert abs(status["NextRotationDate"] - (datetime.now(UTC) + timedelta(days=90))) < (
        timedelta(minutes=5)
    )
    old = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    assert kms.rotate_key_on_demand(KeyId=meta["KeyId"])["KeyId"] == meta["Arn"]
    rotations = kms.list_key_rotations(KeyId=meta["KeyId"])["Rotations"]
    assert [(r["KeyId"], r["RotationType"]) for r in rotations] == [(meta["KeyId"], "ON_DEMAND")]
    new = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"after")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"before"
    assert kms.decrypt(CiphertextBlob=new)["Plaintext"] == b"after"
    # KeyMaterialId names the material each ciphertext was sealed under
    first, second = meta["CurrentKeyMaterialId"], rotations[0]["KeyMaterialId"]
    assert first != second and rotations[0]["KeyMaterialState"] == "CURRENT"
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["CurrentKeyMaterialId"] == second
    assert kms.decrypt(CiphertextBlob=old)["KeyMaterialId"] == first
    assert kms.decrypt(CiphertextBlob=new)["KeyMaterialId"] == second
    data_key = kms.generate_data_key(KeyId=meta["KeyId"], KeySpec="AES_256")
    assert data_key["KeyMaterialId"] == second
    everything = kms.list_key_rotations(KeyId=meta["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [(r["KeyMaterialId"], r["KeyMaterialState"]) for r in everything["Rotations"]] == [
        (first, "NON_CURRENT"),
        (second, "CURRENT"),
    ]
    kms.rotate_key_on_demand(KeyId=meta["KeyId"])
    pages = list(
        kms.get_paginator("list_key_rotations").paginate(
            KeyId=meta["KeyId"], PaginationConfig={"PageSize": 1}
        )
    )
    assert [len(p["Rotations"]) for p in pages] == [1, 1]
    kms.disable_key_rotation(KeyId=meta["KeyId"])
    assert kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"] is False
    for days in (89, 2561):
        failure = aws_error(
            loose.enable_key_rotation, KeyId=meta["KeyId"], RotationPeriodInDays=days
        )
        assert (failure.code, failure.status) == ("ValidationException", 400)
    signing = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    for call in (kms.enable_key_rotation, kms.rotate_key_on_demand):
        failure = aws_error(call, KeyId=signing["KeyId"])
        assert (failure.code, failure.status) == ("UnsupportedOperationException", 400)


# -- key policies ----------------------------------------------------------------------------


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_key_policies(kms: Any, tenant_a: AwsCredentials) -> None:
    meta = new_key(kms)
    got = kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")
    assert got["PolicyName"] == "default"
    statement = json.loads(got["Policy"])["Statement"][0]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{tenant_a.account_id}:root"}
    assert kms.list_key_policies(KeyId=meta["KeyId"])["PolicyNames"] == ["default"]
    root = f"arn:aws:iam::{tenant_a.account_id}:root"
    policy = _policy(
        {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": root}, "Action": "kms:Encrypt", "Resource": "*"},
    )
    kms.put_key_policy(KeyId=meta["KeyId"], PolicyName="default", Policy=policy)
    assert json.loads(kms.get_key_policy(KeyId=meta["KeyId"])["Policy"]) == json.loads(policy)
    failure = aws_error(kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x")
    assert (failure.code, failure.status) == ("AccessDeniedException", 400)
    assert "explicit deny" in failure.message
    out = kms.generate_data_key(KeyId=meta["KeyId"], KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == out["Plaintext"]
    failure = aws_error(kms.get_key_policy, KeyId=meta["KeyId"], PolicyName="other")
    assert (failure.code, failure.status) == ("NotFoundException", 400)
    failure = aws_error(kms.put_key_policy, KeyId=meta["KeyId"], Policy="[1, 2")
    assert (failure.code, failure.status) == ("MalformedPolicyDocumentException", 400)
    stranger = "arn:aws:iam::" + tenant_a.account_id + ":user/somebody-else"
    lockout = _policy(
        {"Effect": "Allow", "Principal": {"AWS": stranger}, "Action": "kms:*", "Resource": "*"}
    )
    failure = aws_error(kms.put_key_policy, KeyId=meta["KeyId"], Policy=lockout)
    assert (failure.code, failure.status) == ("MalformedPolicyDocumentException", 400)


# -- grants ----------------------------------------------------------------------------------


def test_grants(
    server: RunningServer,
    kms: Any,
    client_of: Callable[..., Any],
    tenant_a: AwsCredentials,
) -> None:
    sts = client_of(tenant_a, service="sts")
    my_arn = sts.get_caller_identity()["Arn"]
    assert sts.get_caller_identity()["Account"] == tenant_a.account_id
    second = add_access_key(server.data_dir, tenant_a.account_id, "grantee")
    grantee = client_of(second)
    grantee_arn = client_of(second, service="sts").get_caller_identity()["Arn"]
    only_me = _policy(
        {"Effect": "Allow", "Principal": {"AWS": my_arn}, "Action": "kms:*", "Resource": "*"}
    )
    meta = new_key(kms, Policy=only_me)
    failure = aws_error(grantee.encrypt, KeyId=meta["Arn"], Plaintext=b"x")
    assert (failure.code, failure.status) == ("AccessDeniedException", 400)

    dry = aws_error(
        kms.create_grant,
        KeyId=meta["KeyId"],
        GranteePrincipal=grantee_arn,
        Operations=["Encrypt"],
        DryRun=True,
    )
    assert (dry.code, dry.status) == ("DryRunOperationException", 400)
    assert kms.list_grants(KeyId=meta["KeyId"])["Grants"] == []

    context = {"purpose": "grant-test"}
    made = kms.create_grant(
        KeyId=meta["KeyId"],
        GranteePrincipal=grantee_arn,
        RetiringPrincipal=grantee_arn,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": context},
        Name="e2e-grant",
    )
    assert re.fullmatch(r"[0-9a-f]{64}", made["GrantId"])
    blob = grantee.encrypt(
        KeyId=meta["Arn"],
        Plaintext=b"g",
        EncryptionContext=context,
        GrantTokens=[made["GrantToken"]],
    )["CiphertextBlob"]
    assert grantee.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == b"g"
    failure = aws_error(grantee.encrypt, KeyId=meta["Arn"], Plaintext=b"g")
    assert failure.code == "AccessDeniedException"
    failure = aws_error(
        grantee.generate_data_key, KeyId=meta["Arn"], KeySpec="AES_256", EncryptionContext=context
    )
    assert failure.code == "AccessDeniedException"

    listed = kms.list_grants(KeyId=meta["KeyId"])["Grants"]
    assert len(listed) == 1
    entry = listed[0]
    assert entry["GrantId"] == made["GrantId"]
    assert entry["KeyId"] == meta["Arn"]
    assert entry["GranteePrincipal"] == entry["RetiringPrincipal"] == grantee_arn
    assert sorted(entry["Operations"]) == ["Decrypt", "Encrypt"]
    assert entry["Constraints"] == {"EncryptionContextSubset": context}
    assert entry["Name"] == "e2e-grant"
    retirable = grantee.list_retirable_grants(RetiringPrincipal=grantee_arn)["Grants"]
    assert [g["GrantId"] for g in retirable] == [made["GrantId"]]

    grantee.retire_grant(GrantToken=made["GrantToken"])
    assert kms.list_grants(KeyId=meta["KeyId"])["Grants"] == []
    failure = aws_error(
        grantee.encrypt, KeyId=meta["Arn"], Plaintext=b"g", EncryptionContext=context
    )
    assert failure.code == "AccessDeniedException"

    second_grant = kms.create_grant(
        KeyId=meta["KeyId"], GranteePrincipal=grantee_arn, Operations=["GenerateDataKey"]
    )
    pages = list(
        kms.get_paginator("list_grants").paginate(
            KeyId=meta["KeyId"], PaginationConfig={"PageSize": 1}
        )
    )
    assert [g["GrantId"] for p in pages for g in p["Grants"]] == [second_grant["GrantId"]]
    kms.revoke_grant(KeyId=meta["KeyId"], GrantId=second_grant["GrantId"])
    assert kms.list_grants(KeyId=meta["KeyId"])["Grants"] == []
    failure = aws_error(kms.revoke_grant, KeyId=meta["KeyId"], GrantId=second_grant["GrantId"])
    assert (failure.code, failure.status) == ("NotFoundException", 400)
    failure = aws_error(kms.revoke_grant, KeyId=meta["KeyId"], GrantId="not-a-grant-id")
    assert (failure.code, failure.status) == ("InvalidGrantIdException", 400)
    failure = aws_error(
        kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x", GrantTokens=["bogus-token"]
    )
    assert (failure.code, failure.status) == ("InvalidGrantTokenException", 400)


# -- DryRun ----------------------------------------------------------------------------------


def test_dry_run(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    calls: list[tuple[Any, dict[str, Any]]] = [
        (kms.encrypt, {"KeyId": key["KeyId"], "Plaintext": b"x"}),
        (kms.decrypt, {"CiphertextBlob": blob}),
        (kms.re_encrypt, {"CiphertextBlob": blob, "DestinationKeyId": key["KeyId"]}),
        (kms.generate_data_key, {"KeyId": key["KeyId"], "KeySpec": "AES_256"}),
        (kms.generate_data_key_without_plaintext, {"KeyId": key["KeyId"], "KeySpec": "AES_256"}),
    ]
    for call, params in calls:
        failure = aws_error(call, DryRun=True, **params)
        assert (failure.code, failure.status) == ("DryRunOperationException", 400), call
    failure = aws_error(
        kms.decrypt,
        DryRun=True,
        DryRunModifiers=["IGNORE_CIPHERTEXT"],
        KeyId=key["KeyId"],
        CiphertextBlob=b"junk",
    )
    assert failure.code == "DryRunOperationException"
    disabled = new_key(kms)
    kms.disable_key(KeyId=disabled["KeyId"])
    failure = aws_error(kms.encrypt, KeyId=disabled["KeyId"], Plaintext=b"x", DryRun=True)
    assert failure.code == "DisabledException"


# -- what Strongroom does not offer ----------------------------------------------------------

UNSUPPORTED: list[tuple[str, dict[str, Any]]] = [
    (
        "create_custom_key_store",
        {"CustomKeyStoreName": "cks", "CloudHsmClusterId": "cluster-1234567890a"},
    ),
    ("describe_custom_key_stores", {}),
    ("connect_custom_key_store", {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
    ("disconnect_custom_key_store", {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
    ("delete_custom_key_store", {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
    ("update_custom_key_store", {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
    ("replicate_key", {"KeyId": "KEY", "ReplicaRegion": "us-west-2"}),
    ("update_primary_region", {"KeyId": "KEY", "PrimaryRegion": "us-west-2"}),
]


@pytest.mark.parametrize(("method", "params"), UNSUPPORTED, ids=[m for m, _ in UNSUPPORTED])
def test_unsupported_operations(
    kms: Any, key: dict[str, Any], method: str, params: dict[str, Any]
) -> None:
    filled = {k: key["KeyId"] if v == "KEY" else v for k, v in params.items()}
    failure = aws_error(getattr(kms, method), **filled)
    assert (failure.code, failure.status) == ("UnsupportedOperationException", 400)


def test_get_key_last_usage(kms: Any) -> None:
    meta = new_key(kms)
    fresh = kms.get_key_last_usage(KeyId=meta["KeyId"])
    assert fresh["KeyId"] == meta["Arn"]
    assert fresh["TrackingStartDate"] <= fresh["KeyCreationDate"] == meta["CreationDate"]
    assert "KeyLastUsage" not in fresh
    reply = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
    used = kms.get_key_last_usage(KeyId=meta["Arn"])["KeyLastUsage"]
    assert used["Operation"] == "Encrypt"
    assert used["KmsRequestId"] == reply["ResponseMetadata"]["RequestId"]
    assert abs(used["Timestamp"].timestamp() - datetime.now(UTC).timestamp()) < 60
    kms.describe_key(KeyId=meta["KeyId"])  # not a cryptographic use
    assert kms.get_key_last_usage(KeyId=meta["KeyId"])["KeyLastUsage"] == used
    failure = aws_error(kms.get_key_last_usage, KeyId="alias/anything")
    assert (failure.code, failure.status) == ("NotFoundException", 400)


# -- authentication --------------------------------------------------------------------------


def test_authentication_failures(
    server: RunningServer, client_of: Callable[..., Any], tenant_a: AwsCredentials
) -> None:
    wrong_secret = AwsCredentials(tenant_a.access_key_id, "x" * 40, tenant_a.account_id)
    failure = aws_error(client_of(wrong_secret).list_keys)
    assert (failure.code, failure.status) == ("InvalidSignatureException", 400)
    unknown = AwsCredentials("AKIAUNKNOWNUNKNOWN00", "x" * 40, tenant_a.account_id)
    failure = aws_error(client_of(unknown).list_keys)
    assert (failure.code, failure.status) == ("UnrecognizedClientException", 400)
    sts_failure = aws_error(client_of(unknown, service="sts").get_caller_identity)
    assert (sts_failure.code, sts_failure.status) == ("InvalidClientTokenId", 403)
    # A revoked key: unknown ids are looked up on every request (found ones are reused for
    # a few seconds by the server, so revoking a key in use is not checked here).
    doomed = add_access_key(server.data_dir, tenant_a.account_id, "short-lived")
    revoke_access_key(server.data_dir, doomed.access_key_id)
    failure = aws_error(client_of(doomed).list_keys, Limit=1)
    assert (failure.code, failure.status) == ("UnrecognizedClientException", 400)


def test_every_response_has_a_request_id(kms: Any) -> None:
    meta = kms.list_keys(Limit=1)["ResponseMetadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["RequestId"])
    assert meta["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"


# Tested in test_boto3_asymmetric.py (and multi-Region keys in test_multi_region.py); every
# other operation Strongroom offers is tested here.
ELSEWHERE = frozenset(
    {
        "ReplicateKey",
        "UpdatePrimaryRegion",
        "Sign",
        "Verify",
        "GetPublicKey",
        "GenerateMac",
        "VerifyMac",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GetParametersForImport",
        "ImportKeyMaterial",
        "DeleteImportedKeyMaterial",
        "DeriveSharedSecret",
        "Encapsulate",  # tests/e2e/test_mlkem.py
        "Decapsulate",
    }
)


def test_every_offered_operation_succeeded_here(
    whole_module: None, kms: Any, server: RunningServer
) -> None:
    # Last in the module: the server's own metrics say which operations answered 200.
    model = kms.meta.service_model
    offered = {op for op in model.operation_names if op in HANDLERS}
    assert offered >= ELSEWHERE
    served = {
        op
        for (op, status), count in request_counts(server.endpoint).items()
        if status == "200" and count > 0
    }
    assert sorted(offered - ELSEWHERE - served) == []
