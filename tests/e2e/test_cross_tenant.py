"""Tenancy over the wire: tenant B's credentials against tenant A's keys, every operation.

Tenant A owns keys of every kind (symmetric, signing, HMAC, RSA encryption, imported, key
agreement, ML-KEM), each
with an alias, a description, tags, a grant and a key policy that even names B. B calls every
operation that takes a key, naming A's key every way a KeyId can be written:

- bare key id or alias name: they resolve in B's own account, so ``NotFoundException``;
- key ARN or alias ARN of A's account: refused as AWS refuses a cross-account call with no
  policy that allows it, ``AccessDeniedException``.

Each refusal is compared with the refusal for a key or alias of A that does not exist (no
existence oracle), and nothing of A that B did not send appears in the answer: no alias
names, key ids, descriptions, tags, grant ids, account id, policy text.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.testing.http import AwsCredentials, aws_error
from strongroom.testing.model_drift import vendored_model

REGION = "eu-west-1"
SECRET_MARK = "tenant-a-confidential"
KINDS: dict[str, dict[str, Any]] = {
    "sym": {},
    "sign": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
    "mac": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
    "rsa": {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
    "ext": {"Origin": "EXTERNAL"},
    "agree": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"},
    "kem": {"KeySpec": "ML_KEM_768", "KeyUsage": "ENCAPSULATE_DECAPSULATE"},
    "mrk": {"MultiRegion": True},
}
FORMS = ("id", "arn", "alias", "alias_arn")
PEER_PUBLIC = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
)
EXPECTED = {
    "id": "NotFoundException",
    "alias": "NotFoundException",
    "arn": "AccessDeniedException",
    "alias_arn": "AccessDeniedException",
}


@dataclass
class TenantA:
    """What A owns; ``secrets`` must never reach B unless B sent them."""

    account: str
    keys: dict[str, dict[str, Any]]
    aliases: dict[str, str]
    blob: bytes
    signature: bytes
    mac: bytes
    grant_id: str
    grant_token: str
    secrets: list[str] = field(default_factory=list)

    def ref(self, kind: str, form: str) -> str:
        meta = self.keys[kind]
        refs: dict[str, str] = {
            "id": meta["KeyId"],
            "arn": meta["Arn"],
            "alias": self.aliases[kind],
            "alias_arn": f"arn:aws:kms:{REGION}:{self.account}:{self.aliases[kind]}",
        }
        return refs[form]

    def fake_ref(self, form: str) -> str:
        """A reference of the same form to a key or alias of A that does not exist."""
        missing = str(uuid.uuid4())
        return {
            "id": missing,
            "arn": f"arn:aws:kms:{REGION}:{self.account}:key/{missing}",
            "alias": f"alias/missing-{missing[:8]}",
            "alias_arn": f"arn:aws:kms:{REGION}:{self.account}:alias/missing-{missing[:8]}",
        }[form]


@dataclass
class TenantB:
    """B's own key, ciphertext, alias and principal."""

    account: str
    principal: str
    key_arn: str
    blob: bytes
    alias: str


@pytest.fixture(scope="module")
def b_principal(client_of: Callable[..., Any], tenant_b: AwsCredentials) -> str:
    arn: str = client_of(tenant_b, service="sts").get_caller_identity()["Arn"]
    return arn


@pytest.fixture(scope="module")
def a(kms: Any, tenant_a: AwsCredentials, b_principal: str, tenant_b: AwsCredentials) -> TenantA:
    """Tenant A's resources, made through A's own client."""
    keys: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    secrets: list[str] = []
    for kind, params in KINDS.items():
        description = f"{SECRET_MARK} description of the {kind} key"
        tag_key, tag_value = f"{SECRET_MARK}-tag-{kind}", f"{SECRET_MARK}-value-{kind}"
        meta = kms.create_key(
            Description=description, Tags=[{"TagKey": tag_key, "TagValue": tag_value}], **params
        )["KeyMetadata"]
        alias = f"alias/{SECRET_MARK}-{kind}-{uuid.uuid4().hex[:6]}"
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        keys[kind], aliases[kind] = meta, alias
        secrets += [description, tag_key, tag_value, alias, meta["KeyId"]]
    sym = keys["sym"]
    root = f"arn:aws:iam::{tenant_a.account_id}:root"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"{SECRET_MARK}-statement",
                "Effect": "Allow",
                "Principal": {"AWS": [root, f"arn:aws:iam::{tenant_b.account_id}:root"]},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    kms.put_key_policy(KeyId=sym["KeyId"], Policy=json.dumps(policy))
    secrets.append(f"{SECRET_MARK}-statement")
    grant = kms.create_grant(
        KeyId=sym["KeyId"],
        GranteePrincipal=b_principal,
        RetiringPrincipal=b_principal,
        Operations=["Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey", "RetireGrant"],
    )
    secrets.append(grant["GrantId"])
    blob = kms.encrypt(KeyId=sym["KeyId"], Plaintext=b"A's plaintext")["CiphertextBlob"]
    signature = kms.sign(
        KeyId=keys["sign"]["KeyId"], Message=b"A's message", SigningAlgorithm="ECDSA_SHA_256"
    )["Signature"]
    mac = kms.generate_mac(
        KeyId=keys["mac"]["KeyId"], Message=b"A's message", MacAlgorithm="HMAC_SHA_256"
    )["Mac"]
    return TenantA(
        tenant_a.account_id,
        keys,
        aliases,
        blob,
        signature,
        mac,
        grant["GrantId"],
        grant["GrantToken"],
        secrets,
    )


@pytest.fixture(scope="module")
def b(b_kms: Any, tenant_b: AwsCredentials, b_principal: str) -> TenantB:
    meta = b_kms.create_key(Description="B's own key")["KeyMetadata"]
    alias = "alias/b-own"
    b_kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    blob = b_kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"B's plaintext")["CiphertextBlob"]
    return TenantB(tenant_b.account_id, b_principal, meta["Arn"], blob, alias)


@pytest.fixture(scope="module")
def b_kms(client_of: Callable[..., Any], tenant_b: AwsCredentials) -> Any:
    return client_of(tenant_b)


Builder = Callable[[str, TenantA, TenantB], dict[str, Any]]
NO_ALIAS_FORMS = ("id", "arn")  # members AWS wants a key for, never an alias

# (operation, A's key kind it targets, forms that apply, request builder)
MATRIX: list[tuple[str, str, tuple[str, ...], Builder]] = [
    ("describe_key", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("encrypt", "sym", FORMS, lambda r, a, b: {"KeyId": r, "Plaintext": b"x"}),
    ("decrypt", "sym", FORMS, lambda r, a, b: {"KeyId": r, "CiphertextBlob": a.blob}),
    (
        "re_encrypt",
        "sym",
        FORMS,
        lambda r, a, b: {"CiphertextBlob": a.blob, "SourceKeyId": r, "DestinationKeyId": b.key_arn},
    ),
    (
        "re_encrypt",
        "sym",
        FORMS,
        lambda r, a, b: {"CiphertextBlob": b.blob, "DestinationKeyId": r},
    ),
    ("generate_data_key", "sym", FORMS, lambda r, a, b: {"KeyId": r, "KeySpec": "AES_256"}),
    (
        "generate_data_key_without_plaintext",
        "sym",
        FORMS,
        lambda r, a, b: {"KeyId": r, "NumberOfBytes": 32},
    ),
    (
        "generate_data_key_pair",
        "sym",
        FORMS,
        lambda r, a, b: {"KeyId": r, "KeyPairSpec": "ECC_NIST_P256"},
    ),
    (
        "generate_data_key_pair_without_plaintext",
        "sym",
        FORMS,
        lambda r, a, b: {"KeyId": r, "KeyPairSpec": "RSA_2048"},
    ),
    (
        "sign",
        "sign",
        FORMS,
        lambda r, a, b: {"KeyId": r, "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"},
    ),
    (
        "verify",
        "sign",
        FORMS,
        lambda r, a, b: {
            "KeyId": r,
            "Message": b"A's message",
            "Signature": a.signature,
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
    ),
    ("get_public_key", "sign", FORMS, lambda r, a, b: {"KeyId": r}),
    (
        "derive_shared_secret",
        "agree",
        FORMS,
        lambda r, a, b: {"KeyId": r, "KeyAgreementAlgorithm": "ECDH", "PublicKey": PEER_PUBLIC},
    ),
    (
        "encapsulate",
        "kem",
        FORMS,
        lambda r, a, b: {"KeyId": r, "EncapsulationAlgorithm": "ML_KEM"},
    ),
    (
        "decapsulate",
        "kem",
        FORMS,
        lambda r, a, b: {
            "KeyId": r,
            "EncapsulationAlgorithm": "ML_KEM",
            "SharedSecretCiphertextBlob": b"\x01" * 1088,
        },
    ),
    ("get_public_key", "kem", FORMS, lambda r, a, b: {"KeyId": r}),
    (
        "generate_mac",
        "mac",
        FORMS,
        lambda r, a, b: {"KeyId": r, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"},
    ),
    (
        "verify_mac",
        "mac",
        FORMS,
        lambda r, a, b: {
            "KeyId": r,
            "Message": b"A's message",
            "Mac": a.mac,
            "MacAlgorithm": "HMAC_SHA_256",
        },
    ),
    (
        "encrypt",
        "rsa",
        FORMS,
        lambda r, a, b: {
            "KeyId": r,
            "Plaintext": b"x",
            "EncryptionAlgorithm": "RSAES_OAEP_SHA_256",
        },
    ),
    ("enable_key", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("disable_key", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    (
        "update_key_description",
        "sym",
        FORMS,
        lambda r, a, b: {"KeyId": r, "Description": "B's description"},
    ),
    (
        "schedule_key_deletion",
        "sym",
        FORMS,
        lambda r, a, b: {"KeyId": r, "PendingWindowInDays": 7},
    ),
    ("cancel_key_deletion", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("enable_key_rotation", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("disable_key_rotation", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("get_key_rotation_status", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("rotate_key_on_demand", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("list_key_rotations", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("get_key_last_usage", "sym", NO_ALIAS_FORMS, lambda r, a, b: {"KeyId": r}),
    (
        "tag_resource",
        "sym",
        FORMS,
        lambda r, a, b: {"KeyId": r, "Tags": [{"TagKey": "b-tag", "TagValue": "b-value"}]},
    ),
    (
        "untag_resource",
        "sym",
        FORMS,
        lambda r, a, b: {"KeyId": r, "TagKeys": [f"{SECRET_MARK}-tag-sym"]},
    ),
    ("list_resource_tags", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("get_key_policy", "sym", FORMS, lambda r, a, b: {"KeyId": r, "PolicyName": "default"}),
    ("list_key_policies", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    (
        "put_key_policy",
        "sym",
        FORMS,
        lambda r, a, b: {
            "KeyId": r,
            "PolicyName": "default",
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": b.principal},
                            "Action": "kms:*",
                            "Resource": "*",
                        }
                    ],
                }
            ),
        },
    ),
    (
        "create_grant",
        "sym",
        FORMS,
        lambda r, a, b: {"KeyId": r, "GranteePrincipal": b.principal, "Operations": ["Decrypt"]},
    ),
    ("list_grants", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    ("revoke_grant", "sym", FORMS, lambda r, a, b: {"KeyId": r, "GrantId": a.grant_id}),
    ("retire_grant", "sym", FORMS, lambda r, a, b: {"KeyId": r, "GrantId": a.grant_id}),
    ("list_aliases", "sym", FORMS, lambda r, a, b: {"KeyId": r}),
    (
        "create_alias",
        "sym",
        NO_ALIAS_FORMS,
        lambda r, a, b: {"AliasName": "alias/b-to-a", "TargetKeyId": r},
    ),
    (
        "update_alias",
        "sym",
        NO_ALIAS_FORMS,
        lambda r, a, b: {"AliasName": b.alias, "TargetKeyId": r},
    ),
    (
        "get_parameters_for_import",
        "ext",
        FORMS,
        lambda r, a, b: {
            "KeyId": r,
            "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
            "WrappingKeySpec": "RSA_2048",
        },
    ),
    (
        "import_key_material",
        "ext",
        FORMS,
        lambda r, a, b: {
            "KeyId": r,
            "ImportToken": b"token",
            "EncryptedKeyMaterial": b"\x00" * 256,
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
    ),
    ("delete_imported_key_material", "ext", FORMS, lambda r, a, b: {"KeyId": r}),
    ("replicate_key", "mrk", FORMS, lambda r, a, b: {"KeyId": r, "ReplicaRegion": "us-west-2"}),
    (
        "update_primary_region",
        "mrk",
        FORMS,
        lambda r, a, b: {"KeyId": r, "PrimaryRegion": "us-west-2"},
    ),
    ("describe_key", "mrk", FORMS, lambda r, a, b: {"KeyId": r}),
    ("encrypt", "mrk", FORMS, lambda r, a, b: {"KeyId": r, "Plaintext": b"x"}),
]
DRY_RUN = frozenset(
    {
        "encrypt",
        "decrypt",
        "re_encrypt",
        "generate_data_key",
        "generate_data_key_without_plaintext",
        "generate_data_key_pair",
        "generate_data_key_pair_without_plaintext",
        "sign",
        "verify",
        "generate_mac",
        "verify_mac",
        "encapsulate",
        "decapsulate",
        "create_grant",
        "revoke_grant",
        "retire_grant",
    }
)
CASES = [
    pytest.param(i, form, dry, id=f"{method}-{kind}{i}-{form}{'-dryrun' if dry else ''}")
    for i, (method, kind, forms, _) in enumerate(MATRIX)
    for form in forms
    for dry in ((False, True) if method in DRY_RUN else (False,))
]


def _sent_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _sent_strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _sent_strings(item)]
    return []


def _scrubbed(text: str, params: dict[str, Any]) -> str:
    """``text`` without anything B sent (longest first), which B may see echoed.

    Short values (enum names, ``default``) are left: scrubbing them could hide a leak.
    """
    for sent in sorted(_sent_strings(params), key=len, reverse=True):
        if len(sent) < 8:
            continue
        text = text.replace(sent, "<SENT>")
    return text


def assert_reveals_nothing(text: str, params: dict[str, Any], a: TenantA) -> None:
    scrubbed = _scrubbed(text, params)
    for secret in [*a.secrets, a.account, SECRET_MARK]:
        assert secret not in scrubbed, f"{secret!r} leaked in {text!r}"


@pytest.mark.parametrize(("index", "form", "dry_run"), CASES)
def test_b_cannot_use_a_key(
    b_kms: Any, a: TenantA, b: TenantB, index: int, form: str, dry_run: bool
) -> None:
    method, kind, _, build = MATRIX[index]
    params = build(a.ref(kind, form), a, b)
    if dry_run:
        params["DryRun"] = True
    failure = aws_error(getattr(b_kms, method), **params)
    assert (failure.code, failure.status) == (EXPECTED[form], 400), failure.message
    if failure.code == "AccessDeniedException":
        assert failure.message.startswith(f"User: {b.principal} is not authorized to perform: kms:")
    assert_reveals_nothing(failure.message, params, a)
    # The same refusal as for something of A that does not exist: no existence oracle.
    fake = build(a.fake_ref(form), a, b)
    if dry_run:
        fake["DryRun"] = True
    twin = aws_error(getattr(b_kms, method), **fake)
    assert (twin.code, twin.status) == (failure.code, failure.status)
    assert _scrubbed(twin.message, fake) == _scrubbed(failure.message, params)


KEY_MEMBERS = frozenset({"KeyId", "SourceKeyId", "DestinationKeyId", "TargetKeyId"})
# Operations that name a key but that Strongroom does not offer, with their other required
# members: B asking about A's key gets UnsupportedOperationException like everyone else.
NOT_OFFERED: dict[str, dict[str, Any]] = {}
"""Operations of the vendored model that name a key but are answered as unsupported."""


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def test_matrix_covers_every_operation_that_names_a_key(
    client_of: Callable[..., Any], tenant_b: AwsCredentials, a: TenantA
) -> None:
    # The vendored model is what the server answers by: every operation of it that names a
    # key is in the matrix or refused. Operations only a newer botocore knows (model drift,
    # reported by tests/api/test_model_drift.py) must be refused without revealing A's key.
    loose = client_of(tenant_b, validate=False)
    installed = loose.meta.service_model
    vendored = set(vendored_model()["operations"])
    covered = {method for method, _, _, _ in MATRIX}
    for operation in installed.operation_names:
        shape = installed.operation_model(operation).input_shape
        if shape is None or not KEY_MEMBERS & set(shape.members):
            continue
        if _snake(operation) in covered:
            continue
        if operation in vendored:
            assert operation in NOT_OFFERED, f"add {operation} to the cross-tenant matrix"
        params = {"KeyId": a.ref("sym", "arn"), **NOT_OFFERED.get(operation, {})}
        failure = aws_error(getattr(loose, _snake(operation)), **params)
        assert (failure.code, failure.status) == ("UnsupportedOperationException", 400)
        assert_reveals_nothing(failure.message, params, a)


def test_a_ciphertext_is_invalid_for_b(b_kms: Any, a: TenantA, b: TenantB) -> None:
    for params in (
        {"CiphertextBlob": a.blob},
        {"CiphertextBlob": a.blob, "KeyId": b.key_arn},
    ):
        failure = aws_error(b_kms.decrypt, **params)
        assert (failure.code, failure.status) in (
            ("InvalidCiphertextException", 400),
            ("IncorrectKeyException", 400),
        )
        assert_reveals_nothing(failure.message, params, a)
    failure = aws_error(b_kms.decrypt, CiphertextBlob=a.blob)
    assert failure.code == "InvalidCiphertextException"
    failure = aws_error(b_kms.re_encrypt, CiphertextBlob=a.blob, DestinationKeyId=b.key_arn)
    assert failure.code == "InvalidCiphertextException"
    assert_reveals_nothing(failure.message, {}, a)


def test_b_cannot_use_a_grant(b_kms: Any, a: TenantA, b: TenantB) -> None:
    # A's grant names B as grantee and retiring principal; tenants stay apart regardless.
    failure = aws_error(b_kms.retire_grant, GrantToken=a.grant_token)
    assert (failure.code, failure.status) == ("InvalidGrantTokenException", 400)
    failure = aws_error(b_kms.encrypt, KeyId=b.key_arn, Plaintext=b"x", GrantTokens=[a.grant_token])
    assert (failure.code, failure.status) == ("InvalidGrantTokenException", 400)
    failure = aws_error(
        b_kms.encrypt, KeyId=a.keys["sym"]["Arn"], Plaintext=b"x", GrantTokens=[a.grant_token]
    )
    assert (failure.code, failure.status) == ("AccessDeniedException", 400)
    assert b_kms.list_retirable_grants(RetiringPrincipal=b.principal)["Grants"] == []


def test_b_cannot_touch_a_aliases(b_kms: Any, a: TenantA, b: TenantB) -> None:
    for name in a.aliases.values():
        for call, params in (
            (b_kms.delete_alias, {"AliasName": name}),
            (b_kms.update_alias, {"AliasName": name, "TargetKeyId": b.key_arn}),
        ):
            failure = aws_error(call, **params)
            assert (failure.code, failure.status) == ("NotFoundException", 400)
            assert_reveals_nothing(failure.message, params, a)


def test_alias_names_resolve_in_b_account(b_kms: Any, a: TenantA, b: TenantB) -> None:
    # B may own an alias of the same name as A's: it names B's key, never A's.
    name = a.aliases["mac"]
    b_key = b_kms.create_key()["KeyMetadata"]
    b_kms.create_alias(AliasName=name, TargetKeyId=b_key["KeyId"])
    try:
        assert b_kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == b_key["Arn"]
    finally:
        b_kms.delete_alias(AliasName=name)


def test_b_listings_show_nothing_of_a(
    b_kms: Any, client_of: Callable[..., Any], tenant_b: AwsCredentials, a: TenantA, b: TenantB
) -> None:
    keys = b_kms.list_keys(Limit=1000)
    aliases = b_kms.list_aliases(Limit=100)
    for listing in (keys, aliases):
        assert_reveals_nothing(json.dumps(listing, default=str), {}, a)
    assert keys["Keys"]
    assert all(k["KeyArn"].startswith(f"arn:aws:kms:{REGION}:{b.account}:") for k in keys["Keys"])
    assert all(
        x["AliasArn"].startswith(f"arn:aws:kms:{REGION}:{b.account}:") for x in aliases["Aliases"]
    )
    identity = client_of(tenant_b, service="sts").get_caller_identity()
    assert identity["Account"] == b.account


def test_a_is_unchanged(kms: Any, a: TenantA) -> None:
    # Runs last: nothing B tried changed A's keys, aliases, tags, grants or policy.
    for kind, meta in a.keys.items():
        now = kms.describe_key(KeyId=a.aliases[kind])["KeyMetadata"]
        assert now["KeyState"] == meta["KeyState"]
        assert now["Description"] == meta["Description"]
        tags = kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"]
        assert tags == [
            {"TagKey": f"{SECRET_MARK}-tag-{kind}", "TagValue": f"{SECRET_MARK}-value-{kind}"}
        ]
    sym = a.keys["sym"]["KeyId"]
    assert kms.get_key_rotation_status(KeyId=sym)["KeyRotationEnabled"] is False
    assert kms.list_key_rotations(KeyId=sym)["Rotations"] == []
    assert [g["GrantId"] for g in kms.list_grants(KeyId=sym)["Grants"]] == [a.grant_id]
    assert f"{SECRET_MARK}-statement" in kms.get_key_policy(KeyId=sym)["Policy"]
    assert kms.decrypt(CiphertextBlob=a.blob)["Plaintext"] == b"A's plaintext"
    names = {x["AliasName"] for x in kms.list_aliases(Limit=100)["Aliases"]}
    assert "alias/b-to-a" not in names
