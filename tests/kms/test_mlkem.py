"""ML-KEM (FIPS 203) keys: ML_KEM_768 and ML_KEM_1024, Encapsulate and Decapsulate.

Every shared secret is checked against ``cryptography``'s own ML-KEM on the client side:
a secret encapsulated offline to the public key GetPublicKey returns is recovered by
Decapsulate, and a secret Encapsulate makes for an imported key is recovered offline with
the private key that was imported.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

from strongroom.errors import (
    AccessDeniedError,
    DisabledError,
    DryRunOperationError,
    IncorrectKeyMaterialError,
    InvalidCiphertextError,
    InvalidKeyUsageError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService
from strongroom.testing.key_import import create_external, import_material, pkcs8
from strongroom.testing.service import tenant_caller

PRIVATE: dict[str, Any] = {
    "ML_KEM_768": mlkem.MLKEM768PrivateKey,
    "ML_KEM_1024": mlkem.MLKEM1024PrivateKey,
}
PUBLIC: dict[str, Any] = {
    "ML_KEM_768": mlkem.MLKEM768PublicKey,
    "ML_KEM_1024": mlkem.MLKEM1024PublicKey,
}
CIPHERTEXT_BYTES = {"ML_KEM_768": 1088, "ML_KEM_1024": 1568}
KEM = {"KeyUsage": "ENCAPSULATE_DECAPSULATE"}


@pytest.fixture
def solo(sqlite_service: KeyService) -> Caller:
    """A caller on the SQLite-only service."""
    return tenant_caller(sqlite_service, "solo")


def create(service: KeyService, caller: Caller, spec: str, **more: Any) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "CreateKey", {"KeySpec": spec, **KEM, **more})[
        "KeyMetadata"
    ]
    return meta


def encapsulate(service: KeyService, caller: Caller, key: str, **more: Any) -> dict[str, Any]:
    return service.call(
        caller, "Encapsulate", {"KeyId": key, "EncapsulationAlgorithm": "ML_KEM", **more}
    )


def decapsulate(
    service: KeyService, caller: Caller, key: str, ciphertext: bytes, **more: Any
) -> dict[str, Any]:
    return service.call(
        caller,
        "Decapsulate",
        {
            "KeyId": key,
            "SharedSecretCiphertextBlob": ciphertext,
            "EncapsulationAlgorithm": "ML_KEM",
            **more,
        },
    )


def public_key(service: KeyService, caller: Caller, key: str) -> Any:
    reply = service.call(caller, "GetPublicKey", {"KeyId": key})
    assert reply["KeyUsage"] == "ENCAPSULATE_DECAPSULATE"
    assert reply["EncapsulationAlgorithms"] == ["ML_KEM"]
    assert "SigningAlgorithms" not in reply and "EncryptionAlgorithms" not in reply
    return serialization.load_der_public_key(reply["PublicKey"])


@pytest.mark.parametrize("spec", ["ML_KEM_768", "ML_KEM_1024"])
def test_secrets_agree_with_an_offline_encapsulation(
    service: KeyService, alice: Caller, spec: str
) -> None:
    meta = create(service, alice, spec)
    assert (meta["KeySpec"], meta["KeyUsage"]) == (spec, "ENCAPSULATE_DECAPSULATE")
    assert meta["EncapsulationAlgorithms"] == ["ML_KEM"]
    key = meta["KeyId"]
    described = service.call(alice, "DescribeKey", {"KeyId": key})["KeyMetadata"]
    assert described["EncapsulationAlgorithms"] == ["ML_KEM"]
    public = public_key(service, alice, key)
    assert isinstance(public, PUBLIC[spec])

    # The client encapsulates offline; the service recovers the same secret.
    secret, ciphertext = public.encapsulate()
    reply = decapsulate(service, alice, key, ciphertext)
    assert reply == {
        "KeyId": meta["Arn"],
        "SharedSecret": secret,
        "EncapsulationAlgorithm": "ML_KEM",
    }

    # The service encapsulates; its ciphertext decapsulates to its secret, fresh each time.
    made = encapsulate(service, alice, key)
    assert set(made) == {
        "KeyId",
        "SharedSecret",
        "SharedSecretCiphertextBlob",
        "EncapsulationAlgorithm",
    }
    assert made["KeyId"] == meta["Arn"] and made["EncapsulationAlgorithm"] == "ML_KEM"
    assert len(made["SharedSecret"]) == 32
    assert len(made["SharedSecretCiphertextBlob"]) == CIPHERTEXT_BYTES[spec]
    back = decapsulate(service, alice, key, made["SharedSecretCiphertextBlob"])
    assert back["SharedSecret"] == made["SharedSecret"]
    assert encapsulate(service, alice, key)["SharedSecret"] != made["SharedSecret"]


def test_an_imported_key_decapsulates_offline(sqlite_service: KeyService, solo: Caller) -> None:
    private = mlkem.MLKEM768PrivateKey.generate()
    meta = create_external(sqlite_service, solo, "ML_KEM_768", "ENCAPSULATE_DECAPSULATE")
    assert meta["KeyState"] == "PendingImport"
    with pytest.raises(IncorrectKeyMaterialError, match="ML_KEM_768"):
        wrong = pkcs8(mlkem.MLKEM1024PrivateKey.generate())
        import_material(sqlite_service, solo, meta["KeyId"], wrong, "RSA_AES_KEY_WRAP_SHA_256")
    import_material(sqlite_service, solo, meta["KeyId"], pkcs8(private), "RSAES_OAEP_SHA_256")
    made = encapsulate(sqlite_service, solo, meta["KeyId"])
    # The importer's own private key opens what the service encapsulated.
    assert private.decapsulate(made["SharedSecretCiphertextBlob"]) == made["SharedSecret"]
    # And the service's public key is the imported one.
    reply = sqlite_service.call(solo, "GetPublicKey", {"KeyId": meta["KeyId"]})
    assert reply["PublicKey"] == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    last = sqlite_service.call(solo, "GetKeyLastUsage", {"KeyId": meta["KeyId"]})
    assert last["KeyLastUsage"]["Operation"] == "Encapsulate"


def test_implicit_rejection_and_wrong_lengths(sqlite_service: KeyService, solo: Caller) -> None:
    key = create(sqlite_service, solo, "ML_KEM_768")["KeyId"]
    made = encapsulate(sqlite_service, solo, key)
    ciphertext = made["SharedSecretCiphertextBlob"]
    # Altered, or made for another key: no error, a pseudo-random secret (as AWS KMS).
    flipped = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    rejected = decapsulate(sqlite_service, solo, key, flipped)["SharedSecret"]
    assert len(rejected) == 32 and rejected != made["SharedSecret"]
    other = create(sqlite_service, solo, "ML_KEM_768")["KeyId"]
    assert (
        decapsulate(sqlite_service, solo, other, ciphertext)["SharedSecret"]
        != (made["SharedSecret"])
    )
    # Only a ciphertext of the wrong length is an error.
    big = create(sqlite_service, solo, "ML_KEM_1024")["KeyId"]
    for bad_key, bad in ((key, ciphertext[:-1]), (key, ciphertext + b"\x00"), (big, ciphertext)):
        with pytest.raises(InvalidCiphertextError, match="bytes"):
            decapsulate(sqlite_service, solo, bad_key, bad)


def test_usages_and_key_states(sqlite_service: KeyService, solo: Caller) -> None:
    kem = create(sqlite_service, solo, "ML_KEM_1024")
    key = kem["KeyId"]
    symmetric = sqlite_service.call(solo, "CreateKey", {})["KeyMetadata"]
    with pytest.raises(InvalidKeyUsageError, match="ENCRYPT_DECRYPT which is not valid for"):
        encapsulate(sqlite_service, solo, symmetric["KeyId"])
    exact = f"^{kem['Arn']} key usage is ENCAPSULATE_DECAPSULATE which is not valid for Encrypt.$"
    with pytest.raises(InvalidKeyUsageError, match=exact):
        sqlite_service.call(solo, "Encrypt", {"KeyId": key, "Plaintext": b"x"})
    with pytest.raises(InvalidKeyUsageError, match="ENCAPSULATE_DECAPSULATE"):
        sqlite_service.call(
            solo,
            "Sign",
            {"KeyId": key, "Message": b"m", "SigningAlgorithm": "ML_DSA_SHAKE_256"},
        )
    with pytest.raises(UnsupportedOperationError):
        sqlite_service.call(solo, "EnableKeyRotation", {"KeyId": key})
    with pytest.raises(ValidationError, match="KeyUsage SIGN_VERIFY is not compatible"):
        sqlite_service.call(solo, "CreateKey", {"KeySpec": "ML_KEM_768", "KeyUsage": "SIGN_VERIFY"})
    with pytest.raises(DryRunOperationError):
        encapsulate(sqlite_service, solo, key, DryRun=True)
    with pytest.raises(UnsupportedOperationError, match="Recipient"):
        encapsulate(sqlite_service, solo, key, Recipient={"AttestationDocument": b"doc"})
    # The key's state is checked before its usage: a disabled key is DisabledException.
    for meta in (kem, symmetric):
        sqlite_service.call(solo, "DisableKey", {"KeyId": meta["KeyId"]})
        with pytest.raises(DisabledError, match=f"^{meta['Arn']} is disabled.$"):
            encapsulate(sqlite_service, solo, meta["KeyId"])
        with pytest.raises(DisabledError):
            decapsulate(sqlite_service, solo, meta["KeyId"], b"\x00" * 1568)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "ML_KEM_512",
            r"^KeySpec ML_KEM_512 is not supported: .* use ML_KEM_768 or ML_KEM_1024\.$",
        ),
        ("SM2", r"^KeySpec SM2 is not supported in this Region$"),  # AWS's words
    ],
)
def test_specs_not_offered_are_refused_clearly(
    sqlite_service: KeyService, solo: Caller, spec: str, message: str
) -> None:
    with pytest.raises(UnsupportedOperationError, match=message):
        sqlite_service.call(solo, "CreateKey", {"KeySpec": spec, **KEM})
    assert sqlite_service.call(solo, "ListKeys", {})["Keys"] == []


def _principal(service: KeyService, account: str, name: str) -> Caller:
    record, _ = service.create_access_key(account, user_name=name)
    access = service.lookup_access_key(record.access_key_id)
    assert access is not None
    return access.caller


def test_policies_and_grants_name_the_new_operations(
    sqlite_service: KeyService, solo: Caller
) -> None:
    carol = _principal(sqlite_service, solo.tenant, "carol")
    only_solo = {
        "Effect": "Allow",
        "Principal": {"AWS": solo.principal_arn},
        "Action": "kms:*",
        "Resource": "*",
    }
    carol_encapsulates = {
        "Effect": "Allow",
        "Principal": {"AWS": carol.principal_arn},
        "Action": ["kms:Encapsulate", "kms:GetPublicKey"],
        "Resource": "*",
    }
    policy = {"Version": "2012-10-17", "Statement": [only_solo, carol_encapsulates]}
    key = create(sqlite_service, solo, "ML_KEM_768", Policy=json.dumps(policy))["KeyId"]
    made = encapsulate(sqlite_service, carol, key)
    with pytest.raises(AccessDeniedError, match="kms:Decapsulate"):
        decapsulate(sqlite_service, carol, key, made["SharedSecretCiphertextBlob"])

    grant = sqlite_service.call(
        solo,
        "CreateGrant",
        {"KeyId": key, "GranteePrincipal": carol.principal_arn, "Operations": ["Decapsulate"]},
    )
    back = decapsulate(
        sqlite_service,
        carol,
        key,
        made["SharedSecretCiphertextBlob"],
        GrantTokens=[grant["GrantToken"]],
    )
    assert back["SharedSecret"] == made["SharedSecret"]
    # The new grant operations suit ML-KEM keys only.
    symmetric = sqlite_service.call(solo, "CreateKey", {})["KeyMetadata"]["KeyId"]
    with pytest.raises(ValidationError, match="Encapsulate"):
        sqlite_service.call(
            solo,
            "CreateGrant",
            {
                "KeyId": symmetric,
                "GranteePrincipal": carol.principal_arn,
                "Operations": ["Encapsulate"],
            },
        )
    with pytest.raises(ValidationError, match="Encrypt"):
        sqlite_service.call(
            solo,
            "CreateGrant",
            {"KeyId": key, "GranteePrincipal": carol.principal_arn, "Operations": ["Encrypt"]},
        )


def test_audit_events_name_the_key_and_hold_no_secret(
    sqlite_service: KeyService, solo: Caller
) -> None:
    meta = create(sqlite_service, solo, "ML_KEM_768")
    made = encapsulate(sqlite_service, solo, meta["KeyId"])
    decapsulate(sqlite_service, solo, meta["KeyId"], made["SharedSecretCiphertextBlob"])
    with pytest.raises(InvalidCiphertextError):
        decapsulate(sqlite_service, solo, meta["KeyId"], b"\x01" * 32)
    sqlite_service.audit.flush()
    records = sqlite_service.store.read(lambda tx: tx.read_audit(0, 100_000))
    events = [json.loads(r.body) for r in records]
    kem_events = [
        (e["operation"], e["result"])
        for e in events
        if e.get("operation") in ("Encapsulate", "Decapsulate") and e.get("keyArn") == meta["Arn"]
    ]
    assert kem_events == [
        ("Encapsulate", "Success"),
        ("Decapsulate", "Success"),
        ("Decapsulate", "InvalidCiphertextException"),
    ]
    bodies = b"".join(r.body for r in records)
    for secret in (made["SharedSecret"], made["SharedSecretCiphertextBlob"]):
        assert secret.hex().encode() not in bodies
        assert secret not in bodies
