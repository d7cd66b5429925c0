"""Key types as objects, in the spirit of Tink's key managers: one per family.

Each :class:`KeyType` makes new key material, checks imported material, and says what the
key can offer (a public key, data key pairs). Secret material is random bytes (symmetric,
HMAC) or a private key in DER PKCS#8; the public key is DER SubjectPublicKeyInfo. Pure:
randomness from the OS, primitives from ``cryptography``, no other I/O. The key service
maps each AWS key spec to one of these (``strongroom.kms.keyspec``), so no code branches
on a family name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, rsa

from strongroom.crypto.hazmat import random_bytes

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | mldsa.MLDSA44PrivateKey
    | mldsa.MLDSA65PrivateKey
    | mldsa.MLDSA87PrivateKey
    | ed25519.Ed25519PrivateKey
    | mlkem.MLKEM768PrivateKey
    | mlkem.MLKEM1024PrivateKey
)
"""Private keys of the asymmetric key types."""

SHARED_SECRET_BYTES = 32
"""The size of an ML-KEM shared secret (every parameter set, FIPS 203)."""


class KeyType(Protocol):
    """One family of keys: how to make material, check imported material, what it offers.

    ``generate`` and ``check_import`` return ``(secret material, public key DER or None)``;
    ``check_import`` raises ``ValueError`` with a message that names no key material.
    """

    @property
    def family(self) -> str:
        """A stable name for messages and tests (``symmetric``, ``hmac``, ``rsa``...)."""
        ...

    @property
    def has_public_key(self) -> bool:
        """Whether GetPublicKey answers for it (asymmetric keys)."""
        ...

    @property
    def offers_data_key_pairs(self) -> bool:
        """Whether GenerateDataKeyPair makes pairs of this type."""
        ...

    def generate(self) -> tuple[bytes, bytes | None]:
        """New material."""
        ...

    def check_import(self, raw: bytes) -> tuple[bytes, bytes | None]:
        """Imported material, checked (and private keys re-serialised canonically)."""
        ...


def _serialise(private: PrivateKey) -> tuple[bytes, bytes]:
    secret = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return secret, public


def _load_private(raw: bytes) -> Any:
    try:
        return serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("key material is not a DER PKCS#8 private key") from None


@dataclass(frozen=True, slots=True)
class SymmetricKeyType:
    """256-bit AES-GCM keys (``SYMMETRIC_DEFAULT``)."""

    family: str = "symmetric"
    has_public_key: bool = False
    offers_data_key_pairs: bool = False

    def generate(self) -> tuple[bytes, bytes | None]:
        """32 random bytes."""
        return random_bytes(32), None

    def check_import(self, raw: bytes) -> tuple[bytes, bytes | None]:
        """Exactly 32 bytes."""
        if len(raw) != 32:
            raise ValueError("symmetric key material must be 256 bits")
        return raw, None


@dataclass(frozen=True, slots=True)
class HmacKeyType:
    """HMAC keys: ``size`` random bytes; imported ones ``low`` to ``high`` bytes (AWS's)."""

    name: str
    size: int
    low: int
    high: int
    family: str = "hmac"
    has_public_key: bool = False
    offers_data_key_pairs: bool = False

    def generate(self) -> tuple[bytes, bytes | None]:
        """``size`` random bytes."""
        return random_bytes(self.size), None

    def check_import(self, raw: bytes) -> tuple[bytes, bytes | None]:
        """Between ``low`` and ``high`` bytes."""
        if not self.low <= len(raw) <= self.high:
            raise ValueError(f"{self.name} key material must be {self.low} to {self.high} bytes")
        return raw, None


@dataclass(frozen=True, slots=True)
class RsaKeyType:
    """RSA keys of ``bits`` bits (public exponent 65537)."""

    name: str
    bits: int
    family: str = "rsa"
    has_public_key: bool = True
    offers_data_key_pairs: bool = True

    def generate(self) -> tuple[bytes, bytes | None]:
        """A new RSA private key."""
        return _serialise(rsa.generate_private_key(public_exponent=65537, key_size=self.bits))

    def check_import(self, raw: bytes) -> tuple[bytes, bytes | None]:
        """An RSA private key of exactly ``bits`` bits."""
        private = _load_private(raw)
        if not isinstance(private, rsa.RSAPrivateKey) or private.key_size != self.bits:
            raise ValueError(f"key material is not an {self.name} private key")
        return _serialise(private)


@dataclass(frozen=True, slots=True)
class EccKeyType:
    """Elliptic-curve keys on one curve (ECDSA signing, ECDH on the NIST curves)."""

    name: str
    curve: type[ec.EllipticCurve]
    family: str = "ecc"
    has_public_key: bool = True
    offers_data_key_pairs: bool = True

    def generate(self) -> tuple[bytes, bytes | None]:
        """A new private key on the curve."""
        return _serialise(ec.generate_private_key(self.curve()))

    def check_import(self, raw: bytes) -> tuple[bytes, bytes | None]:
        """A private key on exactly this curve."""
        private = _load_private(raw)
        if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
            private.curve, self.curve
        ):
            raise ValueError(f"key material is not an {self.name} private key")
        return _serialise(private)


@dataclass(frozen=True, slots=True)
class Ed25519KeyType:
    """Ed25519 keys (pure EdDSA)."""

    name: str = "ECC_NIST_EDWARDS25519"
    family: str = "eddsa"
    has_public_key: bool = True
    offers_data_key_pairs: bool = True

    def generate(self) -> tuple[bytes, bytes | None]:
        """A new Ed25519 private key."""
        return _serialise(ed25519.Ed25519PrivateKey.generate())

    def check_import(self, raw: bytes) -> tuple[bytes, bytes | None]:
        """An Ed25519 private key."""
        private = _load_private(raw)
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise ValueError(f"key material is not an {self.name} private key")
        return _serialise(private)


@dataclass(frozen=True, slots=True)
class MlDsaKeyType:
    """ML-DSA keys (FIPS 204) of one parameter set; private keys serialise as their seed."""

    name: str
    private_class: Any
    family: str = "mldsa"
    has_public_key: bool = True
    offers_data_key_pairs: bool = False

    def generate(self) -> tuple[bytes, bytes | None]:
        """A new private key of the parameter set."""
        return _serialise(self.private_class.generate())

    def check_import(self, raw: bytes) -> tuple[bytes, bytes | None]:
        """A private key of exactly this parameter set."""
        private = _load_private(raw)
        if not isinstance(private, self.private_class):
            raise ValueError(f"key material is not an {self.name} private key")
        return _serialise(private)


@dataclass(frozen=True, slots=True)
class MlKemKeyType:
    """ML-KEM keys (FIPS 203) of one parameter set: encapsulation and decapsulation.

    Private keys serialise as DER PKCS#8 (``cryptography`` writes the 64-byte seed form);
    the public key is DER SubjectPublicKeyInfo. ``ciphertext_bytes`` is the parameter set's
    fixed ciphertext length: decapsulation refuses any other length, and otherwise answers
    ML-KEM's implicit rejection (a pseudo-random secret) for a ciphertext that is not ours.
    """

    name: str
    private_class: Any
    public_class: Any
    ciphertext_bytes: int
    family: str = "mlkem"
    has_public_key: bool = True
    offers_data_key_pairs: bool = False

    def generate(self) -> tuple[bytes, bytes | None]:
        """A new private key of the parameter set."""
        return _serialise(self.private_class.generate())

    def check_import(self, raw: bytes) -> tuple[bytes, bytes | None]:
        """A private key of exactly this parameter set."""
        private = _load_private(raw)
        if not isinstance(private, self.private_class):
            raise ValueError(f"key material is not an {self.name} private key")
        return _serialise(private)

    def encapsulate(self, public_der: bytes) -> tuple[bytes, bytes]:
        """``(shared secret, ciphertext)`` for the public key ``public_der``."""
        public = serialization.load_der_public_key(public_der)
        if not isinstance(public, self.public_class):
            raise ValueError(f"stored public key is not an {self.name} public key")
        secret, ciphertext = public.encapsulate()
        return secret, ciphertext

    def decapsulate(self, secret_material: bytes, ciphertext: bytes) -> bytes:
        """The shared secret of ``ciphertext`` (``ValueError`` only for a wrong length)."""
        if len(ciphertext) != self.ciphertext_bytes:
            raise ValueError(f"an {self.name} ciphertext is {self.ciphertext_bytes} bytes")
        private = serialization.load_der_private_key(secret_material, password=None)
        if not isinstance(private, self.private_class):
            raise ValueError(f"stored key material is not an {self.name} private key")
        secret: bytes = private.decapsulate(ciphertext)
        return secret
