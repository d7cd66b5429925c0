"""The instance CA: an ECDSA P-256 root kept in the key store, its key wrapped by the root.

The CA certificate is public (``DATA_DIR/ca.pem``, the bundle clients pass); its private key
lives only in the key store, wrapped by the root of trust (``root.wrap``) like every other
key, at ``("_global", "ca", "root")``. Every node of a deployment over one store therefore
serves certificates from the same CA. The root allows one intermediate below it
(``pathLenConstraint = 1``) so the mesh CA can later hang an issuing intermediate under it.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.crypto.wrap import key_identity
from strongroom.errors import StoreError
from strongroom.ports import RootOfTrust, StoreTx
from strongroom.tls.leaf import key_usage, sign_leaf

CA_TENANT = "_global"
CA_KIND = "ca"
CA_NAME = "root"
CA_VALIDITY_DAYS = 3650
CA_RECORD_VERSION = 1
BACKDATE = datetime.timedelta(minutes=5)
"""Certificates start a little in the past, so clients with a slow clock accept them."""


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def private_key_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 DER (only ever handed to ``root.wrap`` or a memfd)."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(der: bytes) -> ec.EllipticCurvePrivateKey:
    """Parse a PKCS#8 DER ECDSA key; raise ``StoreError`` for anything else."""
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise StoreError("a stored TLS key is not an ECDSA key")
    return key


def wrap_record(
    root: RootOfTrust, identity: tuple[str, ...], cert: x509.Certificate, der_key: bytes
) -> bytes:
    """Serialise a certificate and its key wrapped by ``root`` for ``identity``."""
    return json.dumps(
        {
            "version": CA_RECORD_VERSION,
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "wrapped_key": base64.b64encode(root.wrap(der_key, key_identity(*identity))).decode(
                "ascii"
            ),
        },
        sort_keys=True,
    ).encode("utf-8")


def unwrap_record(
    root: RootOfTrust, identity: tuple[str, ...], raw: bytes
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Reverse :func:`wrap_record`: the certificate and its unwrapped key."""
    try:
        data = json.loads(raw)
        cert = x509.load_pem_x509_certificate(data["certificate"].encode("ascii"))
        wrapped = base64.b64decode(data["wrapped_key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"the stored {'/'.join(identity)} certificate record is damaged") from exc
    return cert, load_private_key(root.unwrap(wrapped, key_identity(*identity)))


@dataclass(frozen=True, slots=True)
class InstanceCa:
    """The CA certificate and its private key (in memory only; never printed)."""

    certificate: x509.Certificate
    _key: ec.EllipticCurvePrivateKey = field(repr=False)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("the instance CA holds its private key and cannot be pickled")

    @property
    def pem(self) -> bytes:
        """The CA certificate in PEM: the bundle clients trust."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue_server(
        self,
        dns_names: list[str],
        ip_addresses: list[str],
        now: float,
        validity_days: int,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """Issue a TLS server certificate with these SANs and a fresh P-256 key."""
        import ipaddress

        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        common_name = dns_names[0] if dns_names else "strongroom"
        return self._issue(common_name, now, validity_days, ExtendedKeyUsageOID.SERVER_AUTH, sans)

    def issue_client(
        self, common_name: str, now: float, validity_days: int
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """Issue a TLS client certificate (KMIP clients) with a fresh P-256 key.

        The certificate names its holder only in the subject; what it may do is decided
        by the front-end that maps its fingerprint (``strongroom.kmip.clients``).
        """
        return self._issue(common_name, now, validity_days, ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(
        self,
        common_name: str,
        now: float,
        validity_days: int,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A leaf for a fresh P-256 key; server ones (with SANs) name their key, as before."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = _utc(now) - BACKDATE
        cert = sign_leaf(
            issuer=self.certificate,
            issuer_key=self._key,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            public_key=key.public_key(),
            not_before=start,
            not_after=start + datetime.timedelta(days=validity_days),
            usages=[usage],
            sans=sans,
            key_identifier=sans is not None,
        )
        return cert, key


def _new_ca(now: float) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"Strongroom instance CA {secrets.token_hex(4)}"
            ),
        ]
    )
    start = _utc(now) - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            key_usage(cert_sign=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def load_or_create_ca(tx: StoreTx, root: RootOfTrust, now: float) -> InstanceCa:
    """Return the instance CA of this store, creating it on first use.

    Run it in a write transaction: two nodes starting at once over one database both see
    the record the first one inserted (the second's insert is a no-op, then it reads).
    """
    identity = (CA_KIND, CA_NAME)
    raw = tx.get(CA_TENANT, CA_KIND, CA_NAME)
    if raw is None:
        cert, key = _new_ca(now)
        record = wrap_record(root, identity, cert, private_key_der(key))
        if tx.insert(CA_TENANT, CA_KIND, CA_NAME, record):
            return InstanceCa(cert, key)
        raw = tx.get(CA_TENANT, CA_KIND, CA_NAME)
        if raw is None:
            raise StoreError("the instance CA record vanished while it was being created")
    cert, key = unwrap_record(root, identity, raw)
    return InstanceCa(cert, key)


def read_ca_certificate(tx: StoreTx) -> x509.Certificate | None:
    """The CA certificate alone (no root of trust needed), or ``None`` if there is no CA."""
    raw = tx.get(CA_TENANT, CA_KIND, CA_NAME)
    if raw is None:
        return None
    try:
        pem = json.loads(raw)["certificate"].encode("ascii")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError("the stored instance CA record is damaged") from exc
    return x509.load_pem_x509_certificate(pem)
