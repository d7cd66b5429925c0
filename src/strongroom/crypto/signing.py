"""AWS KMS's signing algorithms and the asymmetric keys they use, on ``cryptography`` (pure).

Signatures are in AWS KMS's formats, so a client can verify offline with the public key
``GetPublicKey`` returns: RSASSA-PSS (salt length = digest length) or PKCS #1 v1.5, ECDSA
as DER ``(r, s)``, ML-DSA (FIPS 204) and Ed25519 (RFC 8032, pure) as the bare signature.
Message types:

- ``RAW``: the message itself (hashed here for RSA and ECDSA; ML-DSA, with an empty
  context, and Ed25519 sign it as is);
- ``DIGEST``: a digest of the message made by the caller (RSA and ECDSA only);
- ``EXTERNAL_MU``: ML-DSA's 64-byte message representative μ computed by the caller
  (``cryptography``'s ``MLDSAMuHasher``), so a large message never travels.

Errors are this module's own (:class:`InvalidMessage`, :class:`KeyMismatch`, both
``ValueError``); the key service (:mod:`strongroom.kms.signing`) maps them to its errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

MLDSAPrivateKey = mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
MLDSAPublicKey = mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey
PrivateKey = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | MLDSAPrivateKey | ed25519.Ed25519PrivateKey
)
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | MLDSAPublicKey | ed25519.Ed25519PublicKey

RAW = "RAW"
DIGEST = "DIGEST"
EXTERNAL_MU = "EXTERNAL_MU"
ML_DSA_SHAKE_256 = "ML_DSA_SHAKE_256"
ED25519_SHA_512 = "ED25519_SHA_512"
MU_BYTES = 64


class InvalidMessage(ValueError):
    """A message that does not fit its message type or signing algorithm (the caller's fault).

    The text names the algorithm, the message type and lengths, never the message.
    """


class KeyMismatch(ValueError):
    """Stored key material that is not of the kind expected (the service's fault)."""


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_1": hashes.SHA1,
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}


def load_private(material: bytes) -> PrivateKey:
    """Load a private key from stored material (DER PKCS #8); :class:`KeyMismatch` if not one.

    The material was checked when it was generated or imported and is authenticated by its
    wrapping, so OpenSSL's slow RSA consistency check is skipped here.
    """
    key = serialization.load_der_private_key(
        material, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, PrivateKey):
        raise KeyMismatch("stored key material is not an RSA, EC or ML-DSA private key")
    return key


def load_public(der: bytes | None) -> PublicKey:
    """Load a stored public key (DER SubjectPublicKeyInfo)."""
    if der is None:
        raise KeyMismatch("an asymmetric key version has no public key")
    key = serialization.load_der_public_key(der)
    if not isinstance(key, PublicKey):
        raise KeyMismatch("stored public key is not an RSA, EC or ML-DSA key")
    return key


@dataclass(frozen=True, slots=True)
class SigningScheme:
    """One AWS signing algorithm: its family (``pss``, ``pkcs1``, ``ecdsa``, ``mldsa``)."""

    name: str
    family: str
    hash: type[hashes.HashAlgorithm] | None

    @classmethod
    def named(cls, name: str) -> Self:
        """``RSASSA_PSS_SHA_256`` -> PSS with SHA-256, and so on for every AWS name."""
        if name.startswith("RSASSA_PSS_"):
            return cls(name, "pss", _HASHES[name.removeprefix("RSASSA_PSS_")])
        if name.startswith("RSASSA_PKCS1_V1_5_"):
            return cls(name, "pkcs1", _HASHES[name.removeprefix("RSASSA_PKCS1_V1_5_")])
        if name.startswith("ECDSA_"):
            return cls(name, "ecdsa", _HASHES[name.removeprefix("ECDSA_")])
        if name == ML_DSA_SHAKE_256:
            return cls(name, "mldsa", None)
        if name == ED25519_SHA_512:
            return cls(name, "eddsa", None)
        raise KeyError(name)

    def _refuse(self, message_type: str) -> InvalidMessage:
        return InvalidMessage(
            f"MessageType {message_type} is not valid for signing algorithm {self.name}."
        )

    def prepare(self, message: bytes, message_type: str) -> hashes.HashAlgorithm | Prehashed | None:
        """Check ``message`` for its type; the hash argument ``cryptography`` wants.

        ML-DSA takes no hash argument (``None``): its RAW and EXTERNAL_MU messages are only
        checked.
        """
        if self.family == "eddsa":
            if message_type != RAW:  # pure Ed25519 signs the message itself
                raise self._refuse(message_type)
            return None
        if self.hash is None:
            if message_type == EXTERNAL_MU and len(message) != MU_BYTES:
                raise InvalidMessage(
                    f"An EXTERNAL_MU message must be exactly {MU_BYTES} bytes for {self.name}."
                )
            if message_type not in (RAW, EXTERNAL_MU):
                raise self._refuse(message_type)
            return None
        digest = self.hash()
        if message_type == RAW:
            return digest
        if message_type != DIGEST:
            raise self._refuse(message_type)
        if len(message) != digest.digest_size:
            raise InvalidMessage(
                f"Digest is invalid length for algorithm {self.name}: a {message_type} message "
                f"must be exactly {digest.digest_size} bytes."
            )
        return Prehashed(digest)

    def _padding(self) -> padding.AsymmetricPadding:
        assert self.hash is not None
        if self.family == "pss":
            return padding.PSS(mgf=padding.MGF1(self.hash()), salt_length=self.hash().digest_size)
        return padding.PKCS1v15()

    def sign(self, key: PrivateKey, message: bytes, message_type: str) -> bytes:
        """Sign ``message`` of ``message_type`` with ``key``."""
        chosen = self.prepare(message, message_type)
        if self.family == "mldsa" and isinstance(key, MLDSAPrivateKey):
            return key.sign_mu(message) if message_type == EXTERNAL_MU else key.sign(message)
        if self.family == "eddsa" and isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message)
        if chosen is None:
            raise KeyMismatch("signing algorithm does not match the key type")
        if self.family == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(chosen))
        if self.family in ("pss", "pkcs1") and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(message, self._padding(), chosen)
        raise KeyMismatch("signing algorithm does not match the key type")

    def verify(self, key: PublicKey, signature: bytes, message: bytes, message_type: str) -> bool:
        """Whether ``signature`` is valid for ``message`` of ``message_type`` under ``key``."""
        chosen = self.prepare(message, message_type)
        try:
            if self.family == "mldsa" and isinstance(key, MLDSAPublicKey):
                if message_type == EXTERNAL_MU:
                    key.verify_mu(signature, message)
                else:
                    key.verify(signature, message)
            elif self.family == "eddsa" and isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            elif chosen is None:
                raise KeyMismatch("signing algorithm does not match the key type")
            elif self.family == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, message, ec.ECDSA(chosen))
            elif self.family in ("pss", "pkcs1") and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, message, self._padding(), chosen)
            else:
                raise KeyMismatch("signing algorithm does not match the key type")
        except InvalidSignature:
            return False
        return True
