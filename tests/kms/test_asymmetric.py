"""Asymmetric operations with AWS KMS semantics, checked against ``cryptography`` offline.

Round trips per spec and algorithm run once over SQLite and the local root key
(``sqlite_service``): the store and root of trust do not touch the asymmetric crypto. The
operations themselves, errors and tenancy run over every store and root (``service``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from strongroom.errors import (
    AccessDeniedError,
    DisabledError,
    DryRunOperationError,
    InvalidCiphertextError,
    InvalidKeyUsageError,
    InvalidSignatureError,
    NotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService
from strongroom.testing.service import tenant_caller

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_1": hashes.SHA1,
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}
RSA_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"]
ECC_SPECS = {
    "ECC_NIST_P256": ("ECDSA_SHA_256", ec.SECP256R1),
    "ECC_NIST_P384": ("ECDSA_SHA_384", ec.SECP384R1),
    "ECC_NIST_P521": ("ECDSA_SHA_512", ec.SECP521R1),
    "ECC_SECG_P256K1": ("ECDSA_SHA_256", ec.SECP256K1),
}
RSA_SIGNING = [
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
]
OAEP_LIMITS = {
    ("RSA_2048", "RSAES_OAEP_SHA_1"): 214,
    ("RSA_2048", "RSAES_OAEP_SHA_256"): 190,
    ("RSA_3072", "RSAES_OAEP_SHA_1"): 342,
    ("RSA_3072", "RSAES_OAEP_SHA_256"): 318,
    ("RSA_4096", "RSAES_OAEP_SHA_1"): 470,
    ("RSA_4096", "RSAES_OAEP_SHA_256"): 446,
}


@pytest.fixture
def solo(sqlite_service: KeyService) -> Caller:
    """A caller on the SQLite-only service."""
    return tenant_caller(sqlite_service, "solo")


def create_key(service: KeyService, caller: Caller, spec: str, usage: str) -> dict[str, Any]:
    meta: dict[str, Any] = service.call(caller, "CreateKey", {"KeySpec": spec, "KeyUsage": usage})[
        "KeyMetadata"
    ]
    return meta


def public_key(service: KeyService, caller: Caller, key: str) -> Any:
    der = service.call(caller, "GetPublicKey", {"KeyId": key})["PublicKey"]
    return serialization.load_der_public_key(der)


def oaep(algorithm: str) -> padding.OAEP:
    digest = HASHES[algorithm.removeprefix("RSAES_OAEP_")]()
    return padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)


def offline_verify(
    public: Any, algorithm: str, signature: bytes, message: bytes, digest: bool
) -> None:
    """Verify as a client with only the public key would; raises InvalidSignature."""
    hash_name = algorithm.split("_SHA_")[1]
    chosen: Any = HASHES["SHA_" + hash_name]()
    if digest:
        chosen = Prehashed(chosen)
    if algorithm.startswith("ECDSA"):
        public.verify(signature, message, ec.ECDSA(chosen))
    elif algorithm.startswith("RSASSA_PSS"):
        size = HASHES["SHA_" + hash_name]().digest_size
        public.verify(
            signature,
            message,
            padding.PSS(mgf=padding.MGF1(HASHES["SHA_" + hash_name]()), salt_length=size),
            chosen,
        )
    else:
        public.verify(signature, message, padding.PKCS1v15(), chosen)


def digest_of(algorithm: str, message: bytes) -> bytes:
    name = "sha" + algorithm.split("_SHA_")[1]
    return hashlib.new(name, message).digest()


def sign(
    service: KeyService, caller: Caller, key: str, algorithm: str, message: bytes, **extra: Any
) -> bytes:
    response = service.call(
        caller, "Sign", {"KeyId": key, "Message": message, "SigningAlgorithm": algorithm, **extra}
    )
    signature: bytes = response["Signature"]
    return signature


def verify(
    service: KeyService,
    caller: Caller,
    key: str,
    algorithm: str,
    message: bytes,
    signature: bytes,
    **extra: Any,
) -> dict[str, Any]:
    return service.call(
        caller,
        "Verify",
        {
            "KeyId": key,
            "Message": message,
            "Signature": signature,
            "SigningAlgorithm": algorithm,
            **extra,
        },
    )


# -- RSA encryption --------------------------------------------------------------------------


@pytest.mark.parametrize("spec", RSA_SPECS)
def test_rsa_offline_encryption_decrypts_through_us(
    sqlite_service: KeyService, solo: Caller, spec: str
) -> None:
    meta = create_key(sqlite_service, solo, spec, "ENCRYPT_DECRYPT")
    public = public_key(sqlite_service, solo, meta["KeyId"])
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == int(spec[4:])
    for algorithm in ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"):
        limit = OAEP_LIMITS[(spec, algorithm)]
        plaintext = bytes(range(256)) * 2
        plaintext = plaintext[:limit]
        ciphertext = public.encrypt(plaintext, oaep(algorithm))
        response = sqlite_service.call(
            solo,
            "Decrypt",
            {"KeyId": meta["Arn"], "CiphertextBlob": ciphertext, "EncryptionAlgorithm": algorithm},
        )
        assert response == {
            "KeyId": meta["Arn"],
            "Plaintext": plaintext,
            "EncryptionAlgorithm": algorithm,
        }
        ours = sqlite_service.call(
            solo,
            "Encrypt",
            {"KeyId": meta["KeyId"], "Plaintext": plaintext, "EncryptionAlgorithm": algorithm},
        )
        assert set(ours) == {"CiphertextBlob", "KeyId", "EncryptionAlgorithm"}
        assert len(ours["CiphertextBlob"]) == public.key_size // 8
        back = sqlite_service.call(
            solo,
            "Decrypt",
            {
                "KeyId": meta["KeyId"],
                "CiphertextBlob": ours["CiphertextBlob"],
                "EncryptionAlgorithm": algorithm,
            },
        )
        assert back["Plaintext"] == plaintext
        with pytest.raises(ValidationError, match="too long"):
            sqlite_service.call(
                solo,
                "Encrypt",
                {
                    "KeyId": meta["KeyId"],
                    "Plaintext": bytes(limit + 1),
                    "EncryptionAlgorithm": algorithm,
                },
            )


@pytest.fixture
def rsa_key(service: KeyService, alice: Caller) -> Iterator[dict[str, Any]]:
    yield create_key(service, alice, "RSA_2048", "ENCRYPT_DECRYPT")


def test_rsa_decryption_failures(
    service: KeyService, alice: Caller, rsa_key: dict[str, Any]
) -> None:
    key = rsa_key["KeyId"]
    blob = service.call(
        alice,
        "Encrypt",
        {"KeyId": key, "Plaintext": b"secret", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
    )["CiphertextBlob"]

    def decrypt(ciphertext: bytes, algorithm: str = "RSAES_OAEP_SHA_256") -> Any:
        return service.call(
            alice,
            "Decrypt",
            {"KeyId": key, "CiphertextBlob": ciphertext, "EncryptionAlgorithm": algorithm},
        )

    assert decrypt(blob)["Plaintext"] == b"secret"
    flipped = bytearray(blob)
    flipped[100] ^= 1
    for bad in (bytes(flipped), blob[:-1], blob + b"\0", bytes(256)):
        with pytest.raises(InvalidCiphertextError):
            decrypt(bad)
    with pytest.raises(InvalidCiphertextError):
        decrypt(blob, "RSAES_OAEP_SHA_1")
    with pytest.raises(InvalidCiphertextError):
        service.call(alice, "Decrypt", {"KeyId": key, "CiphertextBlob": blob})


def test_rsa_encryption_request_errors(
    service: KeyService, alice: Caller, rsa_key: dict[str, Any]
) -> None:
    key = rsa_key["KeyId"]
    with pytest.raises(ValidationError):
        service.call(alice, "Encrypt", {"KeyId": key, "Plaintext": b"x"})
    with pytest.raises(ValidationError):
        service.call(
            alice,
            "Encrypt",
            {
                "KeyId": key,
                "Plaintext": b"x",
                "EncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                "EncryptionContext": {"a": "b"},
            },
        )
    with pytest.raises(InvalidKeyUsageError):
        service.call(
            alice,
            "Encrypt",
            {"KeyId": key, "Plaintext": b"x", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        )
    with pytest.raises(InvalidKeyUsageError):
        service.call(
            alice, "Sign", {"KeyId": key, "Message": b"x", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}
        )
    with pytest.raises(InvalidKeyUsageError):
        service.call(alice, "GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})


def test_re_encrypt_from_rsa_to_symmetric(
    service: KeyService, alice: Caller, rsa_key: dict[str, Any]
) -> None:
    public = public_key(service, alice, rsa_key["KeyId"])
    ciphertext = public.encrypt(b"move me", oaep("RSAES_OAEP_SHA_1"))
    target = service.call(alice, "CreateKey", {})["KeyMetadata"]
    moved = service.call(
        alice,
        "ReEncrypt",
        {
            "CiphertextBlob": ciphertext,
            "SourceKeyId": rsa_key["KeyId"],
            "SourceEncryptionAlgorithm": "RSAES_OAEP_SHA_1",
            "DestinationKeyId": target["KeyId"],
        },
    )
    assert moved["SourceKeyId"] == rsa_key["Arn"]
    assert moved["SourceEncryptionAlgorithm"] == "RSAES_OAEP_SHA_1"
    plain = service.call(alice, "Decrypt", {"CiphertextBlob": moved["CiphertextBlob"]})
    assert plain["Plaintext"] == b"move me"


# -- Sign / Verify ---------------------------------------------------------------------------


SIGNING_CASES = [(spec, RSA_SIGNING) for spec in RSA_SPECS] + [
    (spec, [alg]) for spec, (alg, _) in ECC_SPECS.items()
]


@pytest.mark.parametrize(("spec", "algs"), SIGNING_CASES, ids=[c[0] for c in SIGNING_CASES])
def test_signatures_verify_offline_and_back(
    sqlite_service: KeyService, solo: Caller, spec: str, algs: list[str]
) -> None:
    meta = create_key(sqlite_service, solo, spec, "SIGN_VERIFY")
    public = public_key(sqlite_service, solo, meta["KeyId"])
    if spec in ECC_SPECS:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert isinstance(public.curve, ECC_SPECS[spec][1])
    message = b"the quick brown fox " * 200  # 4000 bytes
    for algorithm in algs:
        response = sqlite_service.call(
            solo,
            "Sign",
            {"KeyId": meta["KeyId"], "Message": message, "SigningAlgorithm": algorithm},
        )
        assert response.keys() == {"KeyId", "Signature", "SigningAlgorithm"}
        assert response["KeyId"] == meta["Arn"]
        assert response["SigningAlgorithm"] == algorithm
        signature = response["Signature"]
        offline_verify(public, algorithm, signature, message, digest=False)
        if algorithm.startswith("ECDSA"):
            decode_dss_signature(signature)  # DER (r, s), as AWS returns it
        digest = digest_of(algorithm, message)
        digest_signature = sign(
            sqlite_service, solo, meta["KeyId"], algorithm, digest, MessageType="DIGEST"
        )
        offline_verify(public, algorithm, digest_signature, message, digest=False)
        offline_verify(public, algorithm, digest_signature, digest, digest=True)
        # A RAW signature verifies as DIGEST of the same message, and the other way round.
        checked = verify(
            sqlite_service, solo, meta["Arn"], algorithm, digest, signature, MessageType="DIGEST"
        )
        assert checked == {
            "KeyId": meta["Arn"],
            "SignatureValid": True,
            "SigningAlgorithm": algorithm,
        }
        assert verify(sqlite_service, solo, meta["KeyId"], algorithm, message, digest_signature)[
            "SignatureValid"
        ]
        with pytest.raises(InvalidSignatureError):
            verify(sqlite_service, solo, meta["KeyId"], algorithm, message + b".", signature)
        with pytest.raises(InvalidSignature):
            offline_verify(public, algorithm, signature, message + b".", digest=False)


@pytest.fixture
def ecc_key(service: KeyService, alice: Caller) -> dict[str, Any]:
    return create_key(service, alice, "ECC_NIST_P256", "SIGN_VERIFY")


def test_sign_and_verify_over_every_store(
    service: KeyService, alice: Caller, ecc_key: dict[str, Any]
) -> None:
    signature = sign(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", b"hello")
    offline_verify(
        public_key(service, alice, ecc_key["Arn"]),
        "ECDSA_SHA_256",
        signature,
        b"hello",
        digest=False,
    )
    assert verify(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", b"hello", signature)[
        "SignatureValid"
    ]


def test_verify_failures_are_invalid_signature(
    service: KeyService, alice: Caller, ecc_key: dict[str, Any]
) -> None:
    key = ecc_key["KeyId"]
    signature = sign(service, alice, key, "ECDSA_SHA_256", b"hello")
    flipped = bytearray(signature)
    flipped[-1] ^= 1
    for bad in (bytes(flipped), signature[:-1], b"\x30\x00", b"junk"):
        with pytest.raises(InvalidSignatureError):
            verify(service, alice, key, "ECDSA_SHA_256", b"hello", bad)
    with pytest.raises(InvalidSignatureError):
        verify(service, alice, key, "ECDSA_SHA_256", b"hellO", signature)
    other = create_key(service, alice, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(InvalidSignatureError):
        verify(service, alice, other, "ECDSA_SHA_256", b"hello", signature)


@pytest.mark.parametrize("size", [31, 33, 64])
def test_digest_must_have_the_digest_length(
    sqlite_service: KeyService, solo: Caller, size: int
) -> None:
    key = create_key(sqlite_service, solo, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(ValidationError, match="Digest"):
        sign(sqlite_service, solo, key, "ECDSA_SHA_256", bytes(size), MessageType="DIGEST")
    with pytest.raises(ValidationError, match="Digest"):
        verify(
            sqlite_service, solo, key, "ECDSA_SHA_256", bytes(size), b"sig", MessageType="DIGEST"
        )


def test_raw_message_is_limited_to_4096_bytes(
    service: KeyService, alice: Caller, ecc_key: dict[str, Any]
) -> None:
    assert sign(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", bytes(4096))
    with pytest.raises(ValidationError):
        sign(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", bytes(4097))
    with pytest.raises(ValidationError):
        sign(
            service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", bytes(32), MessageType="EXTERNAL_MU"
        )


@pytest.mark.parametrize(
    ("spec", "usage", "algorithm"),
    [
        ("ECC_NIST_P256", "SIGN_VERIFY", "ECDSA_SHA_384"),
        ("ECC_NIST_P256", "SIGN_VERIFY", "RSASSA_PSS_SHA_256"),
        ("ECC_NIST_P384", "SIGN_VERIFY", "ECDSA_SHA_256"),
        ("ECC_SECG_P256K1", "SIGN_VERIFY", "SM2DSA"),
        ("RSA_2048", "SIGN_VERIFY", "ECDSA_SHA_256"),
        ("RSA_2048", "SIGN_VERIFY", "ED25519_SHA_512"),
        ("RSA_2048", "ENCRYPT_DECRYPT", "RSASSA_PSS_SHA_256"),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "RSASSA_PSS_SHA_256"),
        ("HMAC_256", "GENERATE_VERIFY_MAC", "ECDSA_SHA_256"),
    ],
)
def test_wrong_usage_or_algorithm_is_invalid_key_usage(
    sqlite_service: KeyService, solo: Caller, spec: str, usage: str, algorithm: str
) -> None:
    key = create_key(sqlite_service, solo, spec, usage)["KeyId"]
    with pytest.raises(InvalidKeyUsageError):
        sign(sqlite_service, solo, key, algorithm, b"m")
    with pytest.raises(InvalidKeyUsageError):
        verify(sqlite_service, solo, key, algorithm, b"m", b"s")


def test_signing_keys_do_not_encrypt(
    service: KeyService, alice: Caller, ecc_key: dict[str, Any]
) -> None:
    with pytest.raises(InvalidKeyUsageError):
        service.call(
            alice,
            "Encrypt",
            {
                "KeyId": ecc_key["KeyId"],
                "Plaintext": b"x",
                "EncryptionAlgorithm": "RSAES_OAEP_SHA_256",
            },
        )


def test_disabled_key_does_not_sign(
    service: KeyService, alice: Caller, ecc_key: dict[str, Any]
) -> None:
    signature = sign(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", b"m")
    service.call(alice, "DisableKey", {"KeyId": ecc_key["KeyId"]})
    with pytest.raises(DisabledError):
        sign(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", b"m")
    with pytest.raises(DisabledError):
        verify(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", b"m", signature)
    with pytest.raises(DisabledError):
        service.call(alice, "GetPublicKey", {"KeyId": ecc_key["KeyId"]})


def test_dry_run_sign(service: KeyService, alice: Caller, ecc_key: dict[str, Any]) -> None:
    with pytest.raises(DryRunOperationError):
        sign(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", b"m", DryRun=True)


def test_audit_holds_no_message_or_signature(
    service: KeyService, alice: Caller, ecc_key: dict[str, Any]
) -> None:
    message = b"audit-canary-" + bytes(range(32))
    signature = sign(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", message)
    service.audit.flush()
    records = service.store.read(lambda tx: tx.read_audit(0, 100_000))
    bodies = b"".join(r.body for r in records)
    events = [json.loads(r.body) for r in records]
    assert any(e["operation"] == "Sign" and e["keyArn"] == ecc_key["Arn"] for e in events)
    for secret in (message, signature, message.hex().encode(), signature.hex().encode()):
        assert secret not in bodies


# -- GetPublicKey ----------------------------------------------------------------------------


def test_get_public_key_fields(
    service: KeyService, alice: Caller, rsa_key: dict[str, Any], ecc_key: dict[str, Any]
) -> None:
    response = service.call(alice, "GetPublicKey", {"KeyId": rsa_key["KeyId"]})
    assert response.keys() == {
        "KeyId",
        "PublicKey",
        "CustomerMasterKeySpec",
        "KeySpec",
        "KeyUsage",
        "EncryptionAlgorithms",
    }
    assert response["KeyId"] == rsa_key["Arn"]
    assert response["KeySpec"] == response["CustomerMasterKeySpec"] == "RSA_2048"
    assert response["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert response["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    loaded = serialization.load_der_public_key(response["PublicKey"])
    assert (
        loaded.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == response["PublicKey"]
    )

    response = service.call(alice, "GetPublicKey", {"KeyId": ecc_key["Arn"]})
    assert response.keys() == {
        "KeyId",
        "PublicKey",
        "CustomerMasterKeySpec",
        "KeySpec",
        "KeyUsage",
        "SigningAlgorithms",
    }
    assert response["KeyUsage"] == "SIGN_VERIFY"
    assert response["SigningAlgorithms"] == ["ECDSA_SHA_256"]


@pytest.mark.parametrize(
    ("spec", "usage"),
    [("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), ("HMAC_384", "GENERATE_VERIFY_MAC")],
)
def test_no_public_key_for_symmetric_or_hmac(
    service: KeyService, alice: Caller, spec: str, usage: str
) -> None:
    key = create_key(service, alice, spec, usage)["KeyId"]
    with pytest.raises(UnsupportedOperationError):
        service.call(alice, "GetPublicKey", {"KeyId": key})


# -- data key pairs --------------------------------------------------------------------------


PAIR_SPECS = [*RSA_SPECS, *ECC_SPECS]


@pytest.mark.parametrize("pair_spec", PAIR_SPECS)
def test_data_key_pair_round_trip(sqlite_service: KeyService, solo: Caller, pair_spec: str) -> None:
    kms_key = sqlite_service.call(solo, "CreateKey", {})["KeyMetadata"]
    context = {"purpose": "pair"}
    pair = sqlite_service.call(
        solo,
        "GenerateDataKeyPair",
        {"KeyId": kms_key["KeyId"], "KeyPairSpec": pair_spec, "EncryptionContext": context},
    )
    assert pair.keys() == {
        "PrivateKeyCiphertextBlob",
        "PrivateKeyPlaintext",
        "PublicKey",
        "KeyId",
        "KeyPairSpec",
        "KeyMaterialId",
    }
    assert pair["KeyId"] == kms_key["Arn"]
    assert pair["KeyPairSpec"] == pair_spec
    private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
    assert (
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == pair["PublicKey"]
    )
    if pair_spec in ECC_SPECS:
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert isinstance(private.curve, ECC_SPECS[pair_spec][1])
    else:
        assert isinstance(private, rsa.RSAPrivateKey)
        assert private.key_size == int(pair_spec[4:])
    opened = sqlite_service.call(
        solo,
        "Decrypt",
        {"CiphertextBlob": pair["PrivateKeyCiphertextBlob"], "EncryptionContext": context},
    )
    assert opened["Plaintext"] == pair["PrivateKeyPlaintext"]
    assert opened["KeyId"] == kms_key["Arn"]
    with pytest.raises(InvalidCiphertextError):
        sqlite_service.call(solo, "Decrypt", {"CiphertextBlob": pair["PrivateKeyCiphertextBlob"]})


def test_data_key_pair_without_plaintext(service: KeyService, alice: Caller) -> None:
    kms_key = service.call(alice, "CreateKey", {})["KeyMetadata"]
    pair = service.call(
        alice,
        "GenerateDataKeyPairWithoutPlaintext",
        {"KeyId": kms_key["Arn"], "KeyPairSpec": "ECC_NIST_P256"},
    )
    assert pair.keys() == {
        "PrivateKeyCiphertextBlob",
        "PublicKey",
        "KeyId",
        "KeyPairSpec",
        "KeyMaterialId",
    }
    assert pair["KeyMaterialId"] == kms_key["CurrentKeyMaterialId"]
    der = service.call(alice, "Decrypt", {"CiphertextBlob": pair["PrivateKeyCiphertextBlob"]})[
        "Plaintext"
    ]
    private = serialization.load_der_private_key(der, None)
    assert (
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == pair["PublicKey"]
    )


def test_data_key_pair_errors(
    service: KeyService, alice: Caller, ecc_key: dict[str, Any], rsa_key: dict[str, Any]
) -> None:
    kms_key = service.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
    for spec in ("SM2",):
        with pytest.raises(UnsupportedOperationError):
            service.call(alice, "GenerateDataKeyPair", {"KeyId": kms_key, "KeyPairSpec": spec})
    with pytest.raises(ValidationError):
        service.call(alice, "GenerateDataKeyPair", {"KeyId": kms_key, "KeyPairSpec": "RSA_1024"})
    for asymmetric in (ecc_key["KeyId"], rsa_key["KeyId"]):
        with pytest.raises(InvalidKeyUsageError):
            service.call(
                alice, "GenerateDataKeyPair", {"KeyId": asymmetric, "KeyPairSpec": "ECC_NIST_P256"}
            )
    hmac_key = create_key(service, alice, "HMAC_256", "GENERATE_VERIFY_MAC")["KeyId"]
    with pytest.raises(InvalidKeyUsageError):
        service.call(
            alice,
            "GenerateDataKeyPairWithoutPlaintext",
            {"KeyId": hmac_key, "KeyPairSpec": "ECC_NIST_P256"},
        )


# -- tenancy ---------------------------------------------------------------------------------


def test_bob_cannot_use_alices_asymmetric_keys(
    service: KeyService,
    alice: Caller,
    bob: Caller,
    ecc_key: dict[str, Any],
    rsa_key: dict[str, Any],
) -> None:
    signature = sign(service, alice, ecc_key["KeyId"], "ECDSA_SHA_256", b"m")
    with pytest.raises(AccessDeniedError):
        sign(service, bob, ecc_key["Arn"], "ECDSA_SHA_256", b"m")
    with pytest.raises(AccessDeniedError):
        verify(service, bob, ecc_key["Arn"], "ECDSA_SHA_256", b"m", signature)
    with pytest.raises(AccessDeniedError):
        service.call(bob, "GetPublicKey", {"KeyId": ecc_key["Arn"]})
    with pytest.raises(AccessDeniedError):
        service.call(
            bob,
            "Decrypt",
            {
                "KeyId": rsa_key["Arn"],
                "CiphertextBlob": bytes(256),
                "EncryptionAlgorithm": "RSAES_OAEP_SHA_1",
            },
        )
    with pytest.raises(NotFoundError):
        sign(service, bob, ecc_key["KeyId"], "ECDSA_SHA_256", b"m")
