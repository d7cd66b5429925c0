"""DeriveSharedSecret: ECDH between a key's private key and a peer's public key.

A key created with ``KeyUsage=KEY_AGREEMENT`` (NIST P-256, P-384 or P-521) never leaves the
service; a peer sends its public key (DER SubjectPublicKeyInfo, as AWS KMS takes it) and
gets the raw ECDH shared secret (the x-coordinate, as ``cryptography``'s ``ECDH`` returns
it), from which both sides derive keys with a KDF of their choosing. The key's own public
key comes from ``GetPublicKey``.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from strongroom.errors import InvalidKeyUsageError, UnsupportedOperationError, ValidationError
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.keyspec import ECDH, KEY_AGREEMENT, wrong_usage
from strongroom.kms.messages.key_agreement import (
    DeriveSharedSecretRequest,
    DeriveSharedSecretResponse,
)
from strongroom.kms.signing import load_private
from strongroom.ports import StoreTx


def peer_public_key(der: bytes, curve: ec.EllipticCurve) -> ec.EllipticCurvePublicKey:
    """The peer's public key from its DER SubjectPublicKeyInfo, on ``curve``."""
    try:
        public = load_der_public_key(der)
    except (ValueError, TypeError, IndexError) as exc:
        raise ValidationError("PublicKey is not a DER-encoded SubjectPublicKeyInfo.") from exc
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != curve.name:
        raise ValidationError(f"PublicKey must be an elliptic curve public key on {curve.name}.")
    return public


def derive_shared_secret(
    k: Kernel, ctx: OpContext, req: DeriveSharedSecretRequest
) -> DeriveSharedSecretResponse:
    """ECDH with the key's private key and the peer's ``PublicKey``; the raw secret."""
    if req.recipient is not None:
        raise UnsupportedOperationError("Recipient (attested enclaves) is not supported.")
    if req.key_agreement_algorithm != ECDH:
        raise ValidationError("KeyAgreementAlgorithm must be ECDH.")

    def unit(tx: StoreTx) -> DeriveSharedSecretResponse:
        key = k.usable_key(
            tx, ctx, req.key_id, "crypto", "DeriveSharedSecret", None, req.grant_tokens
        )
        if key.key_usage != KEY_AGREEMENT:
            raise wrong_usage(key.arn, key.key_usage, "DeriveSharedSecret")
        private = load_private(k.materials.material(tx, key, key.current_version))
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise InvalidKeyUsageError(f"{key.arn} is not an elliptic curve key.")
        peer = peer_public_key(req.public_key, private.curve)
        return DeriveSharedSecretResponse(
            key_agreement_algorithm=ECDH,
            key_id=key.arn,
            key_origin=key.origin,
            shared_secret=private.exchange(ec.ECDH(), peer),
        )

    return k.read(unit)
