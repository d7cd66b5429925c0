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

from strongroom.crypto.keytypes import MlKemKeyType
from strongroom.errors import (
    InvalidCiphertextError,
    KMSInternalError,
)
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.keyspec import ENCAPSULATE_DECAPSULATE, KEY_SPECS, ML_KEM, wrong_usage
from strongroom.kms.messages.kem import (
    DecapsulateRequest,
    DecapsulateResponse,
    EncapsulateRequest,
    EncapsulateResponse,
)
from strongroom.kms.records import KeyRecord
from strongroom.ports import StoreTx


def _kem_key(
    k: Kernel,
    tx: StoreTx,
    ctx: OpContext,
    req: EncapsulateRequest | DecapsulateRequest,
    action: str,
) -> tuple[KeyRecord, MlKemKeyType]:
    """Resolve, authorise, check the state, then the usage (AWS KMS's order).

    A ``Recipient`` (attestation), which the model does not have for these operations, is
    refused before this runs (:data:`strongroom.kms.unoffered.UNOFFERED_MEMBERS`).
    """
    key = k.usable_key(tx, ctx, req.key_id, "crypto", action, None, req.grant_tokens)
    if key.key_usage != ENCAPSULATE_DECAPSULATE:
        raise wrong_usage(key.arn, key.key_usage, action)
    key_type = KEY_SPECS[key.key_spec].key_type
    if not isinstance(key_type, MlKemKeyType):
        raise KMSInternalError(f"{key.arn} has key usage {key.key_usage} but is not an ML-KEM key")
    return key, key_type


def encapsulate(k: Kernel, ctx: OpContext, req: EncapsulateRequest) -> EncapsulateResponse:
    """A new shared secret and its ciphertext under the key's public key."""

    def unit(tx: StoreTx) -> EncapsulateResponse:
        key, key_type = _kem_key(k, tx, ctx, req, "Encapsulate")
        public = k.materials.version_record(tx, key, key.current_version).public_key
        if public is None:
            raise KMSInternalError(f"{key.arn} has no public key")
        secret, ciphertext = key_type.encapsulate(public)
        return EncapsulateResponse(
            encapsulation_algorithm=ML_KEM,
            key_id=key.arn,
            shared_secret=secret,
            shared_secret_ciphertext_blob=ciphertext,
        )

    return k.read(unit)


def decapsulate(k: Kernel, ctx: OpContext, req: DecapsulateRequest) -> DecapsulateResponse:
    """The shared secret of ``SharedSecretCiphertextBlob``, with the key's private key."""
    ciphertext = req.shared_secret_ciphertext_blob

    def unit(tx: StoreTx) -> DecapsulateResponse:
        key, key_type = _kem_key(k, tx, ctx, req, "Decapsulate")
        if len(ciphertext) != key_type.ciphertext_bytes:
            raise InvalidCiphertextError(
                f"The SharedSecretCiphertextBlob is {len(ciphertext)} bytes; a ciphertext of "
                f"key spec {key.key_spec} is {key_type.ciphertext_bytes} bytes."
            )
        material = k.materials.material(tx, key, key.current_version)
        return DecapsulateResponse(
            encapsulation_algorithm=ML_KEM,
            key_id=key.arn,
            shared_secret=key_type.decapsulate(material, ciphertext),
        )

    return k.read(unit)
