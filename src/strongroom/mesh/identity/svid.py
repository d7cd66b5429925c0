"""X.509-SVIDs as values: a certificate chain for one SPIFFE ID (and, when we made it, its key).

An :class:`X509Svid` is what the mesh CA issues and what the Workload API hands out: the
leaf certificate first, then the intermediate that signed it (the root is in the trust
bundle, not the chain). :meth:`X509Svid.renew_at` is the half-life point at which the
agent pushes a fresh one.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.errors import ValidationError
from strongroom.mesh.identity.spiffe_id import SpiffeId
from strongroom.tls.leaf import sign_leaf

if TYPE_CHECKING:
    from strongroom.mesh.identity.authority import Authority

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SVID_BACKDATE_S = 10.0
"""SVIDs start this long in the past, for peers whose clock is a little slow."""


@dataclass(frozen=True, slots=True)
class X509Svid:
    """An X.509-SVID: ``cert_chain`` is leaf then intermediate; ``private_key`` may be absent.

    ``private_key`` is set when the CA generated the key pair (:meth:`MeshCA.new_svid`) and
    ``None`` when the caller brought its own public key (:meth:`MeshCA.issue_svid`). It is
    never shown in ``repr`` and the value cannot be pickled.
    """

    spiffe_id: SpiffeId
    cert_chain: tuple[x509.Certificate, ...]
    private_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an SVID may hold a private key and cannot be pickled")

    @property
    def leaf(self) -> x509.Certificate:
        """The SVID's own certificate."""
        return self.cert_chain[0]

    @property
    def not_before(self) -> float:
        """Start of validity, seconds since the epoch."""
        return self.leaf.not_valid_before_utc.timestamp()

    @property
    def not_after(self) -> float:
        """End of validity, seconds since the epoch."""
        return self.leaf.not_valid_after_utc.timestamp()

    @property
    def renew_at(self) -> float:
        """Half-way through the validity: when a fresh SVID should replace this one."""
        return self.not_before + (self.not_after - self.not_before) / 2

    @property
    def serial_number(self) -> int:
        """The leaf's serial number."""
        return self.leaf.serial_number

    def chain_der(self) -> bytes:
        """The chain as concatenated DER (the Workload API's ``x509_svid`` field)."""
        return b"".join(c.public_bytes(serialization.Encoding.DER) for c in self.cert_chain)

    def chain_pem(self) -> bytes:
        """The chain as concatenated PEM (what ``SSLContext.load_cert_chain`` reads)."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.cert_chain)

    def key_der(self) -> bytes:
        """The private key as PKCS#8 DER (the Workload API's ``x509_svid_key`` field)."""
        return self._key().private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def key_pem(self) -> bytes:
        """The private key as PKCS#8 PEM."""
        return self._key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def _key(self) -> ec.EllipticCurvePrivateKey:
        if self.private_key is None:
            raise ValidationError("this SVID was issued for a key its holder keeps")
        return self.private_key


def spiffe_id_of(cert: x509.Certificate) -> SpiffeId:
    """The SPIFFE ID of an X.509-SVID: its one ``spiffe://`` URI SAN (else ``ValidationError``)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise ValidationError("the certificate has no subject alternative name") from exc
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        raise ValidationError("an X.509-SVID has exactly one URI SAN")
    return SpiffeId.parse(uris[0])


def sign_svid(
    authority: Authority,
    spiffe_id: SpiffeId,
    public_key: ec.EllipticCurvePublicKey,
    now: float,
    ttl_s: float,
    other_names: Iterable[str | IPAddress] = (),
) -> X509Svid:
    """Sign an X.509-SVID with the authority's intermediate (the checks are the caller's).

    The leaf: one URI SAN (``spiffe_id``) plus DNS or IP SANs from ``other_names``,
    ``cA`` false (critical), ``digitalSignature`` only (critical), ``serverAuth`` and
    ``clientAuth``, valid from ``now`` (less :data:`SVID_BACKDATE_S`) for ``ttl_s`` seconds
    but never past the intermediate.
    """
    issuer = authority.intermediate_certificate
    start = datetime.datetime.fromtimestamp(now - SVID_BACKDATE_S, datetime.UTC)
    end = min(
        datetime.datetime.fromtimestamp(now + ttl_s, datetime.UTC), issuer.not_valid_after_utc
    )
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(spiffe_id))]
    for name in other_names:
        sans.append(x509.DNSName(name) if isinstance(name, str) else x509.IPAddress(name))
    cert = sign_leaf(
        issuer=issuer,
        issuer_key=authority.intermediate_key,
        subject=x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom mesh")]),
        public_key=public_key,
        not_before=start,
        not_after=end,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        sans=sans,
    )
    return X509Svid(spiffe_id, (cert, issuer))


def certificates_from_der(data: bytes) -> list[x509.Certificate]:
    """Split concatenated DER certificates (the Workload API's chain and bundle fields)."""
    found = []
    offset = 0
    while offset < len(data):
        if data[offset] != 0x30 or offset + 2 > len(data):
            raise ValidationError("not a sequence of DER certificates")
        first = data[offset + 1]
        if first < 0x80:
            header, length = 2, first
        else:
            count = first & 0x7F
            if not 1 <= count <= 4 or offset + 2 + count > len(data):
                raise ValidationError("not a sequence of DER certificates")
            header = 2 + count
            length = int.from_bytes(data[offset + 2 : offset + header], "big")
        end = offset + header + length
        if end > len(data):
            raise ValidationError("a DER certificate is cut short")
        try:
            found.append(x509.load_der_x509_certificate(data[offset:end]))
        except ValueError as exc:
            raise ValidationError("not a sequence of DER certificates") from exc
        offset = end
    return found
