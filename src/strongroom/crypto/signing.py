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
HashArgument = hashes.HashAlgorithm | Prehashed | None
"""What ``cryptography`` takes as the hash of a signature: a hash, a prehashed digest, none."""


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


def _refusal(name: str, message_type: str) -> InvalidMessage:
    return InvalidMessage(f"MessageType {message_type} is not valid for signing algorithm {name}.")


_MISMATCH = "signing algorithm does not match the key type"


@dataclass(frozen=True, slots=True)
class _HashedScheme:
    """RSA (PSS or PKCS #1 v1.5) and ECDSA: a hash of the message, or the caller's digest."""

    hash: type[hashes.HashAlgorithm]
    padding_name: str | None  # "pss", "pkcs1", or None for ECDSA

    def prepare(self, name: str, message: bytes, message_type: str) -> HashArgument:
        digest = self.hash()
        if message_type == RAW:
            return digest
        if message_type != DIGEST:
            raise _refusal(name, message_type)
        if len(message) != digest.digest_size:
            raise InvalidMessage(
                f"Digest is invalid length for algorithm {name}: a {message_type} message "
                f"must be exactly {digest.digest_size} bytes."
            )
        return Prehashed(digest)

    def _padding(self) -> padding.AsymmetricPadding:
        if self.padding_name == "pss":
            return padding.PSS(mgf=padding.MGF1(self.hash()), salt_length=self.hash().digest_size)
        return padding.PKCS1v15()

    def sign(self, key: PrivateKey, message: bytes, chosen: HashArgument, _type: str) -> bytes:
        assert chosen is not None
        if self.padding_name is None and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(chosen))
        if self.padding_name is not None and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(message, self._padding(), chosen)
        raise KeyMismatch(_MISMATCH)

    def verify(
        self, key: PublicKey, signature: bytes, message: bytes, chosen: HashArgument, _type: str
    ) -> None:
        assert chosen is not None
        if self.padding_name is None and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(chosen))
        elif self.padding_name is not None and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, self._padding(), chosen)
        else:
            raise KeyMismatch(_MISMATCH)


@dataclass(frozen=True, slots=True)
class _MlDsaScheme:
    """ML-DSA: the message itself (empty context) or its 64-byte representative μ."""

    def prepare(self, name: str, message: bytes, message_type: str) -> HashArgument:
        if message_type == EXTERNAL_MU and len(message) != MU_BYTES:
            raise InvalidMessage(
                f"An EXTERNAL_MU message must be exactly {MU_BYTES} bytes for {name}."
            )
        if message_type not in (RAW, EXTERNAL_MU):
            raise _refusal(name, message_type)
        return None

    def sign(self, key: PrivateKey, message: bytes, _chosen: HashArgument, type_: str) -> bytes:
        if not isinstance(key, MLDSAPrivateKey):
            raise KeyMismatch(_MISMATCH)
        return key.sign_mu(message) if type_ == EXTERNAL_MU else key.sign(message)

    def verify(
        self, key: PublicKey, signature: bytes, message: bytes, _chosen: HashArgument, type_: str
    ) -> None:
        if not isinstance(key, MLDSAPublicKey):
            raise KeyMismatch(_MISMATCH)
        if type_ == EXTERNAL_MU:
            key.verify_mu(signature, message)
        else:
            key.verify(signature, message)


@dataclass(frozen=True, slots=True)
class _Ed25519Scheme:
    """Pure Ed25519: signs the message itself, RAW only."""

    def prepare(self, name: str, message: bytes, message_type: str) -> HashArgument:
        if message_type != RAW:
            raise _refusal(name, message_type)
        return None

    def sign(self, key: PrivateKey, message: bytes, _chosen: HashArgument, _type: str) -> bytes:
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyMismatch(_MISMATCH)
        return key.sign(message)

    def verify(
        self, key: PublicKey, signature: bytes, message: bytes, _chosen: HashArgument, _type: str
    ) -> None:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise KeyMismatch(_MISMATCH)
        key.verify(signature, message)


_Scheme = _HashedScheme | _MlDsaScheme | _Ed25519Scheme


@dataclass(frozen=True, slots=True)
class SigningScheme:
    """One AWS signing algorithm: its name and the scheme object that does its work."""

    name: str
    scheme: _Scheme

    @classmethod
    def named(cls, name: str) -> Self:
        """``RSASSA_PSS_SHA_256`` -> PSS with SHA-256, and so on for every AWS name."""
        if name.startswith("RSASSA_PSS_"):
            return cls(name, _HashedScheme(_HASHES[name.removeprefix("RSASSA_PSS_")], "pss"))
        if name.startswith("RSASSA_PKCS1_V1_5_"):
            hash_name = name.removeprefix("RSASSA_PKCS1_V1_5_")
            return cls(name, _HashedScheme(_HASHES[hash_name], "pkcs1"))
        if name.startswith("ECDSA_"):
            return cls(name, _HashedScheme(_HASHES[name.removeprefix("ECDSA_")], None))
        if name == ML_DSA_SHAKE_256:
            return cls(name, _MlDsaScheme())
        if name == ED25519_SHA_512:
            return cls(name, _Ed25519Scheme())
        raise KeyError(name)

    def prepare(self, message: bytes, message_type: str) -> HashArgument:
        """Check ``message`` for its type; the hash argument ``cryptography`` wants.

        ML-DSA and Ed25519 take no hash argument (``None``): their messages are only checked.
        """
        return self.scheme.prepare(self.name, message, message_type)

    def sign(self, key: PrivateKey, message: bytes, message_type: str) -> bytes:
        """Sign ``message`` of ``message_type`` with ``key``."""
        chosen = self.prepare(message, message_type)
        return self.scheme.sign(key, message, chosen, message_type)

    def verify(self, key: PublicKey, signature: bytes, message: bytes, message_type: str) -> bool:
        """Whether ``signature`` is valid for ``message`` of ``message_type`` under ``key``."""
        chosen = self.prepare(message, message_type)
        try:
            self.scheme.verify(key, signature, message, chosen, message_type)
        except InvalidSignature:
            return False
        return True
