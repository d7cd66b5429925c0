"""Importing key material into a :class:`~strongroom.kms.KeyService` as a boto3 user does.

The client side wraps material with ``cryptography`` exactly as AWS documents it: RSA-OAEP
directly (``RSAES_OAEP_SHA_*``), or an AES key under RSA-OAEP followed by the material under
AES key wrap with padding (``RSA_AES_KEY_WRAP_SHA_*``). Shared by the import tests.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from strongroom.kms import Caller, KeyService
from strongroom.testing.service import decrypt, describe, encrypt

__all__ = [
    "ALGORITHMS",
    "DAY",
    "FOREVER",
    "HASHES",
    "create_external",
    "decrypt",
    "describe",
    "encrypt",
    "import_material",
    "parameters",
    "pkcs8",
    "wrap",
]

DAY = 86400.0
FOREVER = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
ALGORITHMS = [
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
]
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"SHA_1": hashes.SHA1, "SHA_256": hashes.SHA256}


def wrap(public_der: bytes, algorithm: str, material: bytes) -> bytes:
    """Wrap ``material`` for import as an AWS KMS client does."""
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    digest = HASHES[algorithm[-5:] if algorithm.endswith("SHA_1") else algorithm[-7:]]
    pad = padding.OAEP(mgf=padding.MGF1(digest()), algorithm=digest(), label=None)
    if algorithm.startswith("RSAES_OAEP_"):
        return public.encrypt(material, pad)
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, pad) + aes_key_wrap_with_padding(aes_key, material)


def create_external(
    service: KeyService, caller: Caller, spec: str = "SYMMETRIC_DEFAULT", usage: str | None = None
) -> dict[str, Any]:
    """Create a key of origin ``EXTERNAL`` (no material yet); its ``KeyMetadata``."""
    request: dict[str, Any] = {"Origin": "EXTERNAL", "KeySpec": spec}
    if usage is not None:
        request["KeyUsage"] = usage
    meta: dict[str, Any] = service.call(caller, "CreateKey", request)["KeyMetadata"]
    return meta


def parameters(
    service: KeyService,
    caller: Caller,
    key: str,
    algorithm: str = "RSAES_OAEP_SHA_256",
    spec: str = "RSA_2048",
) -> dict[str, Any]:
    """``GetParametersForImport`` for ``key``: the wrapping public key and import token."""
    return service.call(
        caller,
        "GetParametersForImport",
        {"KeyId": key, "WrappingAlgorithm": algorithm, "WrappingKeySpec": spec},
    )


def import_material(
    service: KeyService,
    caller: Caller,
    key: str,
    material: bytes,
    algorithm: str = "RSAES_OAEP_SHA_256",
    spec: str = "RSA_2048",
    **extra: Any,
) -> dict[str, Any]:
    """Wrap ``material`` under fresh import parameters and import it.

    ``extra`` are more request members; without any, the material never expires.
    """
    params = parameters(service, caller, key, algorithm, spec)
    return service.call(
        caller,
        "ImportKeyMaterial",
        {
            "KeyId": key,
            "ImportToken": params["ImportToken"],
            "EncryptedKeyMaterial": wrap(params["PublicKey"], algorithm, material),
            **(extra or FOREVER),
        },
    )


def pkcs8(private: Any) -> bytes:
    """A private key as AWS KMS takes asymmetric key material for import: DER PKCS#8."""
    der: bytes = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return der
