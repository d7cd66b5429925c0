"""Key specs, the usages each allows, and the algorithms each usage offers (as AWS KMS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, mldsa, mlkem

from strongroom.crypto.keytypes import (
    EccKeyType,
    Ed25519KeyType,
    HmacKeyType,
    KeyType,
    MlDsaKeyType,
    MlKemKeyType,
    RsaKeyType,
    SymmetricKeyType,
)
from strongroom.errors import InvalidKeyUsageError

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
SIGN_VERIFY = "SIGN_VERIFY"
GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
KEY_AGREEMENT = "KEY_AGREEMENT"
ENCAPSULATE_DECAPSULATE = "ENCAPSULATE_DECAPSULATE"
ML_KEM = "ML_KEM"
ED25519_SHA_512 = "ED25519_SHA_512"
ECDH = "ECDH"
ED25519 = "ECC_NIST_EDWARDS25519"

_RSA_ENCRYPTION = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
_RSA_SIGNING = (
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
)


@dataclass(frozen=True, slots=True)
class KeySpecInfo:
    """What one key spec is: its family and, per usage, the algorithms it offers."""

    name: str
    key_type: KeyType
    usages: dict[str, tuple[str, ...]]

    @property
    def family(self) -> str:
        """The key type's family name (``symmetric``, ``hmac``, ``rsa``...), for messages."""
        return self.key_type.family

    @property
    def default_usage(self) -> str | None:
        """The usage CreateKey picks when none is given (only symmetric keys have one)."""
        return ENCRYPT_DECRYPT if self.name == SYMMETRIC_DEFAULT else None


def _ecc(
    name: str, curve: type[ec.EllipticCurve], algorithm: str, *, agreement: bool = True
) -> KeySpecInfo:
    usages: dict[str, tuple[str, ...]] = {SIGN_VERIFY: (algorithm,)}
    if agreement:  # AWS KMS agrees keys on the NIST curves only
        usages[KEY_AGREEMENT] = (ECDH,)
    return KeySpecInfo(name, EccKeyType(name, curve), usages)


def _mldsa(level: int, private_class: Any) -> KeySpecInfo:
    name = f"ML_DSA_{level}"
    return KeySpecInfo(
        name, MlDsaKeyType(name, private_class), {SIGN_VERIFY: ("ML_DSA_SHAKE_256",)}
    )


def _mlkem(level: int, private_class: Any, public_class: Any, ciphertext_bytes: int) -> KeySpecInfo:
    name = f"ML_KEM_{level}"
    key_type = MlKemKeyType(name, private_class, public_class, ciphertext_bytes)
    return KeySpecInfo(name, key_type, {ENCAPSULATE_DECAPSULATE: (ML_KEM,)})


def _hmac(bits: int, size: int, imported_max: int) -> KeySpecInfo:
    name = f"HMAC_{bits}"
    return KeySpecInfo(
        name,
        HmacKeyType(name, size, size, imported_max),
        {GENERATE_VERIFY_MAC: (f"HMAC_SHA_{bits}",)},
    )


def _rsa(bits: int) -> KeySpecInfo:
    name = f"RSA_{bits}"
    return KeySpecInfo(
        name, RsaKeyType(name, bits), {ENCRYPT_DECRYPT: _RSA_ENCRYPTION, SIGN_VERIFY: _RSA_SIGNING}
    )


KEY_SPECS: dict[str, KeySpecInfo] = {
    spec.name: spec
    for spec in (
        KeySpecInfo(SYMMETRIC_DEFAULT, SymmetricKeyType(), {ENCRYPT_DECRYPT: (SYMMETRIC_DEFAULT,)}),
        # HMAC: generated keys have the digest's size; imported ones up to its block size
        _hmac(224, 28, 64),
        _hmac(256, 32, 64),
        _hmac(384, 48, 128),
        _hmac(512, 64, 128),
        _rsa(2048),
        _rsa(3072),
        _rsa(4096),
        _ecc("ECC_NIST_P256", ec.SECP256R1, "ECDSA_SHA_256"),
        _ecc("ECC_NIST_P384", ec.SECP384R1, "ECDSA_SHA_384"),
        _ecc("ECC_NIST_P521", ec.SECP521R1, "ECDSA_SHA_512"),
        _ecc("ECC_SECG_P256K1", ec.SECP256K1, "ECDSA_SHA_256", agreement=False),
        _mldsa(44, mldsa.MLDSA44PrivateKey),
        _mldsa(65, mldsa.MLDSA65PrivateKey),
        _mldsa(87, mldsa.MLDSA87PrivateKey),
        # ML-KEM-512 is not offered: cryptography has ML-KEM-768 and ML-KEM-1024 only
        _mlkem(768, mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, 1088),
        _mlkem(1024, mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, 1568),
        # Ed25519ph (ED25519_PH_SHA_512) is not offered: cryptography has only pure Ed25519
        KeySpecInfo(ED25519, Ed25519KeyType(), {SIGN_VERIFY: (ED25519_SHA_512,)}),
    )
}
"""Every key spec Strongroom can create."""


NOT_OFFERED_SPECS: dict[str, str] = {
    "ML_KEM_512": "KeySpec ML_KEM_512 is not supported: the cryptography library offers "
    "ML-KEM-768 and ML-KEM-1024 only; use ML_KEM_768 or ML_KEM_1024.",
    # AWS's own words outside its China Regions (SM2 is offered in none here)
    "SM2": "KeySpec SM2 is not supported in this Region",
}
"""Key specs of the AWS model that Strongroom refuses, with the message CreateKey gives."""

ALGORITHMS_MEMBER: dict[str, str] = {
    ENCRYPT_DECRYPT: "EncryptionAlgorithms",
    SIGN_VERIFY: "SigningAlgorithms",
    GENERATE_VERIFY_MAC: "MacAlgorithms",
    KEY_AGREEMENT: "KeyAgreementAlgorithms",
    ENCAPSULATE_DECAPSULATE: "EncapsulationAlgorithms",
}
"""The ``KeyMetadata`` / ``GetPublicKey`` member that lists a key usage's algorithms."""


def algorithms(spec: str, usage: str) -> tuple[str, ...]:
    """Return the algorithms a key of ``spec`` and ``usage`` offers (empty if none)."""
    info = KEY_SPECS.get(spec)
    return () if info is None else info.usages.get(usage, ())


def wrong_usage(key_arn: str, key_usage: str, operation: str) -> InvalidKeyUsageError:
    """The error AWS returns when a key of ``key_usage`` is asked for ``operation``."""
    return InvalidKeyUsageError(
        f"{key_arn} key usage is {key_usage} which is not valid for {operation}."
    )
