"""Encapsulate and Decapsulate: ML-KEM (FIPS 203) key encapsulation, as AWS KMS answers it.

A key created with ``KeyUsage=ENCAPSULATE_DECAPSULATE`` (``ML_KEM_768`` or ``ML_KEM_1024``)
keeps its private key in the service. ``Encapsulate`` makes a fresh 32-byte shared secret
and its ciphertext with the key's public key (which anyone may also do offline with the
DER SubjectPublicKeyInfo ``GetPublicKey`` returns); ``Decapsulate`` recovers the secret
from a ciphertext with the private key. As in AWS KMS, Decapsulate refuses only a
ciphertext of the wrong length (``InvalidCiphertextException``): any other ciphertext,
altered or made for another key, yields ML-KEM's implicit rejection, a pseudo-random
secret, so the two parties must confirm they hold the same secret before relying on it.
"""

from __future__ import annotations

from typing import Any

from strongroom.crypto.keytypes import MlKemKeyType
from strongroom.errors import (
    InvalidCiphertextError,
    KMSInternalError,
    UnsupportedOperationError,
)
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.keyspec import ENCAPSULATE_DECAPSULATE, KEY_SPECS, ML_KEM, wrong_usage
from strongroom.kms.records import KeyRecord
from strongroom.ports import StoreTx


def _kem_key(
    k: Kernel, tx: StoreTx, ctx: OpContext, req: dict[str, Any], action: str
) -> tuple[KeyRecord, MlKemKeyType]:
    """Resolve, authorise, check the state, then the usage (AWS KMS's order)."""
    if req.get("Recipient") is not None:
        # not in today's model; should a later one add attestation, refuse it, never ignore it
        raise UnsupportedOperationError("Recipient (attested enclaves) is not supported.")
    key = k.usable_key(tx, ctx, req["KeyId"], "crypto", action, None, req.get("GrantTokens"))
    if key.key_usage != ENCAPSULATE_DECAPSULATE:
        raise wrong_usage(key.arn, key.key_usage, action)
    key_type = KEY_SPECS[key.key_spec].key_type
    if not isinstance(key_type, MlKemKeyType):
        raise KMSInternalError(f"{key.arn} has key usage {key.key_usage} but is not an ML-KEM key")
    return key, key_type


def encapsulate(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """A new shared secret and its ciphertext under the key's public key."""

    def unit(tx: StoreTx) -> dict[str, Any]:
        key, key_type = _kem_key(k, tx, ctx, req, "Encapsulate")
        public = k.materials.version_record(tx, key, key.current_version).public_key
        if public is None:
            raise KMSInternalError(f"{key.arn} has no public key")
        secret, ciphertext = key_type.encapsulate(public)
        return {
            "KeyId": key.arn,
            "SharedSecret": secret,
            "SharedSecretCiphertextBlob": ciphertext,
            "EncapsulationAlgorithm": ML_KEM,
        }

    return k.read(unit)


def decapsulate(k: Kernel, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
    """The shared secret of ``SharedSecretCiphertextBlob``, with the key's private key."""
    ciphertext: bytes = req["SharedSecretCiphertextBlob"]

    def unit(tx: StoreTx) -> dict[str, Any]:
        key, key_type = _kem_key(k, tx, ctx, req, "Decapsulate")
        if len(ciphertext) != key_type.ciphertext_bytes:
            raise InvalidCiphertextError(
                f"The SharedSecretCiphertextBlob is {len(ciphertext)} bytes; a ciphertext of "
                f"key spec {key.key_spec} is {key_type.ciphertext_bytes} bytes."
            )
        material = k.materials.material(tx, key, key.current_version)
        return {
            "KeyId": key.arn,
            "SharedSecret": key_type.decapsulate(material, ciphertext),
            "EncapsulationAlgorithm": ML_KEM,
        }

    return k.read(unit)
