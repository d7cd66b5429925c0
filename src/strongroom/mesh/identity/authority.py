"""The signing keys of one trust domain, kept in the key store wrapped by the root of trust.

Per trust domain ``TD`` there are three records in tenant ``_global``, kind ``meshca``:

=====================  ===================================================================
name                   value
=====================  ===================================================================
``TD/root``            the root CA certificate and its key wrapped by the root of trust
``TD/intermediate``    the issuing intermediate CA certificate and its wrapped key
``TD/jwt``             the JWT-SVID signing key (ES256), its key id, the bundle sequence
=====================  ===================================================================

(the certificate records use :func:`strongroom.tls.ca.wrap_record`, the same format as the
instance CA of ``strongroom server``). Keys are ECDSA P-256. The root (10 years,
``pathLenConstraint`` 1) signs only intermediates; the intermediate (1 year, path length
0) signs the SVIDs and is replaced from the root once less than a third of its life is
left. The root's key is unwrapped only for that. Each CA certificate carries the trust
domain's SPIFFE ID (``spiffe://TD``) as its URI SAN, as the X.509-SVID standard suggests.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.crypto.wrap import key_identity
from strongroom.errors import StoreError
from strongroom.mesh.identity.spiffe_id import TrustDomain
from strongroom.ports import GLOBAL_TENANT, RootOfTrust, StoreTx
from strongroom.tls.ca import load_private_key, private_key_der, unwrap_record, wrap_record
from strongroom.tls.leaf import key_usage

MESH_CA_KIND = "meshca"
ROOT_VALIDITY_DAYS = 3650
INTERMEDIATE_VALIDITY_DAYS = 365
RENEW_WHEN_LEFT = 1 / 3
CA_BACKDATE_SECONDS = 300.0
JWT_RECORD_VERSION = 1


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def record_name(trust_domain: TrustDomain, part: str) -> str:
    """The store name of one of the trust domain's records (``TD/root`` ...)."""
    return f"{trust_domain.name}/{part}"


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return key_usage(digital_signature=not cert_sign, cert_sign=cert_sign)


def _ca_certificate(
    trust_domain: TrustDomain,
    role: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    now: float,
    days: int,
) -> x509.Certificate:
    """A CA certificate for ``trust_domain``: self-signed (``issuer`` None) or below ``issuer``."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom mesh"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, trust_domain.name[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{role} CA {secrets.token_hex(4)}"),
        ]
    )
    start = _utc(now - CA_BACKDATE_SECONDS)
    end = start + datetime.timedelta(days=days)
    signer_key = key
    issuer_name = subject
    builder = x509.CertificateBuilder()
    if issuer is not None:
        issuer_cert, signer_key = issuer
        issuer_name = issuer_cert.subject
        end = min(end, issuer_cert.not_valid_after_utc)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    return (
        builder.subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=1 if issuer is None else 0), critical=True
        )
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(str(trust_domain.id))]),
            critical=False,
        )
        .sign(signer_key, hashes.SHA256())
    )


@dataclass(frozen=True, slots=True)
class JwtKey:
    """The JWT-SVID signing key of a trust domain (``kid`` names it in JWT headers)."""

    kid: str
    sequence: int
    _key: ec.EllipticCurvePrivateKey = field(repr=False)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a signing key cannot be pickled")

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """The signing key (in memory only)."""
        return self._key

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The verification key, published in the JWT bundle."""
        return self._key.public_key()


@dataclass(frozen=True, slots=True)
class Authority:
    """What a trust domain signs with: root certificate, intermediate and its key, JWT key."""

    trust_domain: TrustDomain
    root_certificate: x509.Certificate
    intermediate_certificate: x509.Certificate
    _intermediate_key: ec.EllipticCurvePrivateKey = field(repr=False)
    jwt_key: JwtKey

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a CA holds private keys and cannot be pickled")

    @property
    def intermediate_key(self) -> ec.EllipticCurvePrivateKey:
        """The key SVIDs are signed with (in memory only)."""
        return self._intermediate_key


def _wrap_jwt(root: RootOfTrust, name: str, kid: str, sequence: int, key: bytes) -> bytes:
    wrapped = root.wrap(key, key_identity(MESH_CA_KIND, name))
    return json.dumps(
        {
            "version": JWT_RECORD_VERSION,
            "kid": kid,
            "sequence": sequence,
            "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
        },
        sort_keys=True,
    ).encode("utf-8")


def _unwrap_jwt(root: RootOfTrust, name: str, raw: bytes) -> JwtKey:
    try:
        data = json.loads(raw)
        kid, sequence = str(data["kid"]), int(data["sequence"])
        wrapped = base64.b64decode(data["wrapped_key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"the stored {name} signing key record is damaged") from exc
    key = load_private_key(root.unwrap(wrapped, key_identity(MESH_CA_KIND, name)))
    return JwtKey(kid, sequence, key)


def _insert_or_read(tx: StoreTx, name: str, record: bytes) -> bytes:
    """Insert ``record``; if a concurrent creator won, return theirs."""
    if tx.insert(GLOBAL_TENANT, MESH_CA_KIND, name, record):
        return record
    raw = tx.get(GLOBAL_TENANT, MESH_CA_KIND, name)
    if raw is None:
        raise StoreError("a mesh CA record vanished while it was being created")
    return raw


def load_or_create_authority(
    tx: StoreTx, root: RootOfTrust, trust_domain: TrustDomain, now: float
) -> Authority:
    """The trust domain's authority, creating or renewing records as needed (write tx)."""
    root_name = record_name(trust_domain, "root")
    raw = tx.get(GLOBAL_TENANT, MESH_CA_KIND, root_name)
    if raw is None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _ca_certificate(trust_domain, "root", key, None, now, ROOT_VALIDITY_DAYS)
        raw = _insert_or_read(
            tx, root_name, wrap_record(root, (MESH_CA_KIND, root_name), cert, private_key_der(key))
        )
    root_cert = _certificate_of(raw, root_name)
    inter_name = record_name(trust_domain, "intermediate")
    inter_identity = (MESH_CA_KIND, inter_name)
    raw_inter = tx.get_for_update(GLOBAL_TENANT, MESH_CA_KIND, inter_name)
    inter: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
    if raw_inter is not None:
        inter = unwrap_record(root, inter_identity, raw_inter)
        if not _fresh(inter[0], root_cert, now):
            inter = None
    if inter is None:
        _root_cert, root_key = unwrap_record(root, (MESH_CA_KIND, root_name), raw)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _ca_certificate(
            trust_domain,
            "intermediate",
            key,
            (root_cert, root_key),
            now,
            INTERMEDIATE_VALIDITY_DAYS,
        )
        record = wrap_record(root, inter_identity, cert, private_key_der(key))
        tx.put(GLOBAL_TENANT, MESH_CA_KIND, inter_name, record)
        inter = (cert, key)
    jwt_name = record_name(trust_domain, "jwt")
    raw_jwt = tx.get(GLOBAL_TENANT, MESH_CA_KIND, jwt_name)
    if raw_jwt is None:
        key_der = private_key_der(ec.generate_private_key(ec.SECP256R1()))
        raw_jwt = _insert_or_read(
            tx, jwt_name, _wrap_jwt(root, jwt_name, secrets.token_urlsafe(16), 1, key_der)
        )
    jwt_key = _unwrap_jwt(root, jwt_name, raw_jwt)
    return Authority(trust_domain, root_cert, inter[0], inter[1], jwt_key)


def _certificate_of(raw: bytes, name: str) -> x509.Certificate:
    """The certificate of a stored record (no key unwrapped)."""
    try:
        return x509.load_pem_x509_certificate(json.loads(raw)["certificate"].encode("ascii"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"the stored {name} certificate record is damaged") from exc


def _fresh(cert: x509.Certificate, root_cert: x509.Certificate, now: float) -> bool:
    """Whether an intermediate is below ``root_cert`` with more than a third of its life left."""
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    return cert.issuer == root_cert.subject and now < end - (end - start) * RENEW_WHEN_LEFT


def stored_versions(tx: StoreTx, trust_domain: TrustDomain) -> tuple[bytes | None, ...]:
    """The raw root, intermediate and JWT records: a cheap way to see whether they changed."""
    return tuple(
        tx.get(GLOBAL_TENANT, MESH_CA_KIND, record_name(trust_domain, part))
        for part in ("root", "intermediate", "jwt")
    )
