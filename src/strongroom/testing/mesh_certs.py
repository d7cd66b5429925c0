"""A throwaway SPIFFE trust domain for tests: root, intermediate and X.509-SVIDs in memory.

:class:`TestTrustDomain` issues SVIDs shaped like the mesh CA's (ECDSA P-256, exactly one
``spiffe://`` URI SAN, cA false, digitalSignature, serverAuth + clientAuth) and also the odd
ones tests need: expired, not yet valid, or with a chosen URI SAN list. It also issues plain
TLS server certificates (DNS SANs) for the egress tests, and :func:`self_signed_server` makes
one that chains to nothing. Nothing here is persistent or meant for production.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.mesh.proxy.svid_source import SvidState, state_from_pem
from strongroom.tls.leaf import key_usage, sign_leaf

_BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A certificate chain (leaf first, PEM) with its private key (PEM, never printed)."""

    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    serial: int
    not_after: datetime.datetime


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    path_length: int,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    start = _now() - _BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


class TestTrustDomain:
    """Root and intermediate CA of one trust domain, issuing test certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, trust_domain: str) -> None:
        self.trust_domain = trust_domain
        root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _ca_cert(f"{trust_domain} test root", root_key, None, 1)
        self._inter_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _ca_cert(
            f"{trust_domain} test intermediate", self._inter_key, (self.root, root_key), 0
        )

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a test trust domain holds private keys and cannot be pickled")

    @property
    def bundle_pem(self) -> bytes:
        """The trust bundle: the root certificate in PEM."""
        return _pem(self.root)

    def _leaf(
        self,
        sans: list[x509.GeneralName],
        eku: list[x509.ObjectIdentifier],
        not_before: datetime.datetime,
        not_after: datetime.datetime,
    ) -> IssuedCert:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = sign_leaf(
            issuer=self.intermediate,
            issuer_key=self._inter_key,
            subject=x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test")]),
            public_key=key.public_key(),
            not_before=not_before,
            not_after=not_after,
            usages=eku,
            sans=sans,
            key_identifier=False,
        )
        serial = cert.serial_number
        return IssuedCert(
            chain_pem=_pem(cert) + _pem(self.intermediate),
            key_pem=_key_pem(key),
            serial=serial,
            not_after=not_after,
        )

    def issue_svid(
        self,
        path: str,
        *,
        ttl: datetime.timedelta = datetime.timedelta(hours=1),
        not_before: datetime.datetime | None = None,
        uris: list[str] | None = None,
    ) -> IssuedCert:
        """An X.509-SVID for ``spiffe://<trust domain><path>`` (or exactly ``uris``)."""
        start = not_before if not_before is not None else _now() - _BACKDATE
        names = uris if uris is not None else [f"spiffe://{self.trust_domain}{path}"]
        return self._leaf(
            [x509.UniformResourceIdentifier(u) for u in names],
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            start,
            start + ttl,
        )

    def issue_expired_svid(self, path: str) -> IssuedCert:
        """An SVID whose validity ended an hour ago."""
        start = _now() - datetime.timedelta(hours=3)
        return self.issue_svid(path, ttl=datetime.timedelta(hours=2), not_before=start)

    def issue_server(self, dns_names: list[str]) -> IssuedCert:
        """A TLS server certificate for ``dns_names`` (valid one day)."""
        start = _now() - _BACKDATE
        return self._leaf(
            [x509.DNSName(n) for n in dns_names],
            [ExtendedKeyUsageOID.SERVER_AUTH],
            start,
            start + datetime.timedelta(days=1),
        )


def self_signed_server(dns_names: list[str]) -> IssuedCert:
    """A self-signed TLS server certificate for ``dns_names``: trusted by no store."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    start = _now() - _BACKDATE
    serial = x509.random_serial_number()
    not_after = start + datetime.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return IssuedCert(
        chain_pem=_pem(cert), key_pem=_key_pem(key), serial=serial, not_after=not_after
    )


def svid_state(issued: IssuedCert, bundle_pem: bytes) -> SvidState:
    """A sidecar's :class:`~strongroom.mesh.proxy.svid_source.SvidState` from a test certificate."""
    return state_from_pem(issued.chain_pem, issued.key_pem, bundle_pem)
