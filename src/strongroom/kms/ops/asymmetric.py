"""Asymmetric operations: RSA encryption, Sign and Verify, GetPublicKey, data key pairs.

Everything a client sees is in AWS KMS's own formats, so a client can work offline with
the public key GetPublicKey returns: an RSA ciphertext is the bare RSAES-OAEP ciphertext
(as long as the modulus); signatures are as :mod:`strongroom.kms.signing` makes them.
Public keys are DER SubjectPublicKeyInfo, private keys of data key pairs DER PKCS #8.
"""

from __future__ import annotations

from strongroom.errors import (
    InvalidKeyUsageError,
    InvalidSignatureError,
    UnsupportedOperationError,
)
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.keyspec import (
    ALGORITHMS_MEMBER,
    ED25519,
    KEY_SPECS,
    SIGN_VERIFY,
    SYMMETRIC_DEFAULT,
    algorithms,
    wrong_usage,
)
from strongroom.kms.material import new_material
from strongroom.kms.messages.asymmetric import (
    GenerateDataKeyPairRequest,
    GenerateDataKeyPairResponse,
    GenerateDataKeyPairWithoutPlaintextRequest,
    GenerateDataKeyPairWithoutPlaintextResponse,
    GetPublicKeyRequest,
    GetPublicKeyResponse,
    SignRequest,
    SignResponse,
    VerifyRequest,
    VerifyResponse,
)
from strongroom.kms.ops.ciphertexts import seal_for
from strongroom.kms.records import KeyRecord
from strongroom.kms.signing import RAW, SigningScheme, load_private, load_public
from strongroom.kms.states import check_state
from strongroom.kms.wire_codec import field_name
from strongroom.ports import StoreTx

DATA_KEY_PAIR_SPECS = frozenset(
    name for name, info in KEY_SPECS.items() if info.key_type.offers_data_key_pairs
)
"""The KeyPairSpec values GenerateDataKeyPair serves (SM2 is not offered)."""


def signing_scheme(key: KeyRecord, algorithm: str, operation: str) -> SigningScheme:
    """The scheme for ``algorithm``; refuse keys not for signing or not offering it."""
    if key.key_usage != SIGN_VERIFY:
        raise wrong_usage(key.arn, key.key_usage, operation)
    if algorithm == "ED25519_PH_SHA_512" and key.key_spec == ED25519:
        raise UnsupportedOperationError(
            "ED25519_PH_SHA_512 (Ed25519ph) is not offered; sign with ED25519_SHA_512."
        )
    if algorithm not in algorithms(key.key_spec, SIGN_VERIFY):
        raise InvalidKeyUsageError(
            f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
        )
    return SigningScheme.named(algorithm)


def sign(k: Kernel, ctx: OpContext, req: SignRequest) -> SignResponse:
    """Sign a message (RAW, up to 4096 bytes) or a message digest (DIGEST)."""
    message_type = req.message_type or RAW

    def unit(tx: StoreTx) -> SignResponse:
        key = k.usable_key(tx, ctx, req.key_id, "crypto", "Sign", None, req.grant_tokens)
        scheme = signing_scheme(key, req.signing_algorithm, "Sign")
        scheme.prepare(req.message, message_type)
        private = load_private(k.materials.material(tx, key, key.current_version))
        signature = scheme.sign(private, req.message, message_type)
        return SignResponse(key_id=key.arn, signature=signature, signing_algorithm=scheme.name)

    return k.read(unit)


def verify(k: Kernel, ctx: OpContext, req: VerifyRequest) -> VerifyResponse:
    """Verify a signature; an invalid one is ``KMSInvalidSignatureException``."""
    message_type = req.message_type or RAW

    def unit(tx: StoreTx) -> VerifyResponse:
        key = k.usable_key(tx, ctx, req.key_id, "crypto", "Verify", None, req.grant_tokens)
        scheme = signing_scheme(key, req.signing_algorithm, "Verify")
        public = load_public(k.materials.version_record(tx, key, key.current_version).public_key)
        if not scheme.verify(public, req.signature, req.message, message_type):
            raise InvalidSignatureError("")
        return VerifyResponse(key_id=key.arn, signature_valid=True, signing_algorithm=scheme.name)

    return k.read(unit)


def get_public_key(k: Kernel, ctx: OpContext, req: GetPublicKeyRequest) -> GetPublicKeyResponse:
    """Return the public key (DER SubjectPublicKeyInfo) of an asymmetric key."""

    def unit(tx: StoreTx) -> GetPublicKeyResponse:
        key = k.resolve_key(tx, ctx, req.key_id)
        k.authorize(tx, ctx, key, "GetPublicKey", None, req.grant_tokens)
        check_state(key.key_state, "crypto", key.arn)  # the state first, then the type (AWS)
        if not KEY_SPECS[key.key_spec].key_type.has_public_key:
            raise UnsupportedOperationError(
                f"{key.arn} key spec is {key.key_spec}; only asymmetric KMS keys have a public key."
            )
        record = k.materials.version_record(tx, key, key.current_version)
        listed = tuple(algorithms(key.key_spec, key.key_usage))
        return GetPublicKeyResponse(
            customer_master_key_spec=key.key_spec,
            key_id=key.arn,
            key_spec=key.key_spec,
            key_usage=key.key_usage,
            public_key=record.public_key,
            **{field_name(ALGORITHMS_MEMBER[key.key_usage]): listed},
        )

    return k.read(unit)


def _generate_data_key_pair(
    k: Kernel,
    ctx: OpContext,
    req: GenerateDataKeyPairRequest | GenerateDataKeyPairWithoutPlaintextRequest,
    action: str,
) -> GenerateDataKeyPairResponse:
    pair_spec = req.key_pair_spec
    if pair_spec not in DATA_KEY_PAIR_SPECS:
        raise UnsupportedOperationError(f"KeyPairSpec {pair_spec} is not supported.")
    if isinstance(req, GenerateDataKeyPairRequest) and req.recipient is not None:
        raise UnsupportedOperationError("Recipient (attested enclaves) is not supported.")
    context = req.encryption_context

    def unit(tx: StoreTx) -> GenerateDataKeyPairResponse:
        key = k.usable_key(tx, ctx, req.key_id, "crypto", action, context, req.grant_tokens)
        if key.key_spec != SYMMETRIC_DEFAULT:
            raise InvalidKeyUsageError(
                f"{key.arn} key spec is {key.key_spec}; data key pairs are encrypted under "
                "symmetric encryption KMS keys only."
            )
        private, public = new_material(pair_spec)
        blob = seal_for(k, tx, key, private, context)
        return GenerateDataKeyPairResponse(
            key_id=key.arn,
            key_material_id=k.materials.material_id_of(tx, key, key.current_version),
            key_pair_spec=pair_spec,
            private_key_ciphertext_blob=blob,
            private_key_plaintext=private,
            public_key=public,
        )

    return k.read(unit)


def generate_data_key_pair(
    k: Kernel, ctx: OpContext, req: GenerateDataKeyPairRequest
) -> GenerateDataKeyPairResponse:
    """Return a fresh key pair: private key in plaintext and encrypted, public key."""
    return _generate_data_key_pair(k, ctx, req, "GenerateDataKeyPair")


def generate_data_key_pair_without_plaintext(
    k: Kernel, ctx: OpContext, req: GenerateDataKeyPairWithoutPlaintextRequest
) -> GenerateDataKeyPairWithoutPlaintextResponse:
    """Return a fresh key pair: the private key only encrypted, and the public key."""
    made = _generate_data_key_pair(k, ctx, req, "GenerateDataKeyPairWithoutPlaintext")
    return GenerateDataKeyPairWithoutPlaintextResponse(
        key_id=made.key_id,
        key_material_id=made.key_material_id,
        key_pair_spec=made.key_pair_spec,
        private_key_ciphertext_blob=made.private_key_ciphertext_blob,
        public_key=made.public_key,
    )
