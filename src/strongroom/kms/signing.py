"""AWS KMS's signing algorithms for the key service: the pure ones with the service's errors.

The schemes, key loading and message checks are pure and live in ``crypto``; here a bad
message becomes :class:`~strongroom.errors.ValidationError` (the caller's fault) and stored
material of the wrong kind :class:`~strongroom.errors.KMSInternalError` (ours), with the
same texts.
"""

from __future__ import annotations

from strongroom.crypto import signing as _pure
from strongroom.crypto.signing import (
    DIGEST,
    ED25519_SHA_512,
    EXTERNAL_MU,
    ML_DSA_SHAKE_256,
    MU_BYTES,
    RAW,
    HashArgument,
    InvalidMessage,
    KeyMismatch,
    MLDSAPrivateKey,
    MLDSAPublicKey,
    PrivateKey,
    PublicKey,
)
from strongroom.errors import KMSInternalError, ValidationError

__all__ = [
    "DIGEST",
    "ED25519_SHA_512",
    "EXTERNAL_MU",
    "ML_DSA_SHAKE_256",
    "MU_BYTES",
    "RAW",
    "MLDSAPrivateKey",
    "MLDSAPublicKey",
    "PrivateKey",
    "PublicKey",
    "SigningScheme",
    "load_private",
    "load_public",
]


def load_private(material: bytes) -> PrivateKey:
    """Load a private key from stored material (DER PKCS #8)."""
    try:
        return _pure.load_private(material)
    except KeyMismatch as exc:
        raise KMSInternalError(str(exc)) from None


def load_public(der: bytes | None) -> PublicKey:
    """Load a stored public key (DER SubjectPublicKeyInfo)."""
    try:
        return _pure.load_public(der)
    except KeyMismatch as exc:
        raise KMSInternalError(str(exc)) from None


class SigningScheme(_pure.SigningScheme):
    """One AWS signing algorithm (:class:`.crypto.signing.SigningScheme`) raising our errors."""

    __slots__ = ()

    def prepare(self, message: bytes, message_type: str) -> HashArgument:
        """Check ``message`` for its type; ``ValidationError`` if it does not fit."""
        try:
            return super().prepare(message, message_type)
        except InvalidMessage as exc:
            raise ValidationError(str(exc)) from None

    def sign(self, key: PrivateKey, message: bytes, message_type: str) -> bytes:
        """Sign ``message`` of ``message_type`` with ``key``."""
        try:
            return super().sign(key, message, message_type)
        except KeyMismatch as exc:
            raise KMSInternalError(str(exc)) from None

    def verify(self, key: PublicKey, signature: bytes, message: bytes, message_type: str) -> bool:
        """Whether ``signature`` is valid for ``message`` of ``message_type`` under ``key``."""
        try:
            return super().verify(key, signature, message, message_type)
        except KeyMismatch as exc:
            raise KMSInternalError(str(exc)) from None
