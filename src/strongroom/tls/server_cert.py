"""The server's TLS certificate: issued by the instance CA, kept wrapped in the key store.

:func:`server_credentials` returns the certificate for a set of SANs, reusing the stored
one until a third of its lifetime is left, then issuing a fresh one. Its key, like the
CA's, is kept only wrapped by the root of trust (``("_global", "ca", "server/<digest>")``);
:func:`server_ssl_context` loads it into an :class:`ssl.SSLContext` through an anonymous
in-memory file, so it never touches the disk in clear.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import ValidationError
from strongroom.ports import RootOfTrust, StoreTx
from strongroom.tls.ca import (
    CA_KIND,
    CA_TENANT,
    load_or_create_ca,
    private_key_der,
    unwrap_record,
    wrap_record,
)

SERVER_VALIDITY_DAYS = 90
RENEW_WHEN_LEFT = 1 / 3
"""Re-issue once less than this share of the certificate's lifetime is left."""
DEFAULT_DNS_NAMES = ("localhost",)
DEFAULT_IP_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class SubjectNames:
    """The SANs a server certificate carries: DNS names and IP addresses, sorted.

    ``spiffe_id`` (a ``spiffe://`` name among the extras) makes the mesh CA of its trust
    domain issue the certificate instead of the instance CA
    (:mod:`strongroom.mesh.identity.ingress`).
    """

    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    spiffe_id: str | None = None

    @classmethod
    def build(cls, extra: list[str] | tuple[str, ...] = ()) -> SubjectNames:
        """localhost, 127.0.0.1, ::1, this host's name and every name in ``extra``."""
        dns = set(DEFAULT_DNS_NAMES)
        ips = set(DEFAULT_IP_ADDRESSES)
        spiffe_ids = set()
        host = socket.gethostname()
        for name in (host, *extra):
            name = name.strip()
            if not name:
                continue
            if name.startswith("spiffe://"):
                spiffe_ids.add(name)
                continue
            try:
                address = ipaddress.ip_address(name)
            except ValueError:
                dns.add(name.lower())
                continue
            if not address.is_unspecified:  # a wildcard listener address names no host
                ips.add(str(address))
        if len(spiffe_ids) > 1:
            raise ValidationError("a server certificate carries one SPIFFE ID")
        return cls(tuple(sorted(dns)), tuple(sorted(ips)), min(spiffe_ids, default=None))

    @property
    def digest(self) -> str:
        """A short stable name for this set of SANs."""
        text = "\n".join((*self.dns_names, "", *self.ip_addresses))
        if self.spiffe_id is not None:
            text += f"\n\n{self.spiffe_id}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ServerCredentials:
    """A PEM certificate chain (leaf, then CA) and its PEM key; the key is never shown."""

    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_pem: bytes
    not_after: float
    not_before: float = 0.0

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("server credentials hold a private key and cannot be pickled")


def _renew_at(not_before: float, not_after: float) -> float:
    return not_after - (not_after - not_before) * RENEW_WHEN_LEFT


MeshIssuer = Callable[[StoreTx, RootOfTrust, "SubjectNames", float], "ServerCredentials"]
"""Issues a certificate with a SPIFFE ID (``strongroom.mesh.identity.ingress`` has one)."""


def server_credentials(
    tx: StoreTx,
    root: RootOfTrust,
    names: SubjectNames,
    now: float,
    validity_days: int = SERVER_VALIDITY_DAYS,
    *,
    issue_mesh: MeshIssuer | None = None,
) -> ServerCredentials:
    """Return the stored certificate for ``names``, issuing one if missing or near expiry.

    Run it in a write transaction (it may create the CA and store a new certificate).
    With ``names.spiffe_id`` the trust domain's mesh CA issues it instead, through
    ``issue_mesh`` (the mesh imports this package, never the other way round).
    """
    if names.spiffe_id is not None:
        if issue_mesh is None:
            raise ValidationError("a certificate with a SPIFFE ID is issued by the mesh CA")
        return issue_mesh(tx, root, names, now)
    ca = load_or_create_ca(tx, root, now)
    name = f"server/{names.digest}"
    identity = (CA_KIND, name)
    raw = tx.get_for_update(CA_TENANT, CA_KIND, name)
    if raw is not None:
        cert, key = unwrap_record(root, identity, raw)
        start = cert.not_valid_before_utc.timestamp()
        end = cert.not_valid_after_utc.timestamp()
        if now < _renew_at(start, end) and cert.issuer == ca.certificate.subject:
            return credentials_of([cert], key, ca.pem)
    cert, key = ca.issue_server(list(names.dns_names), list(names.ip_addresses), now, validity_days)
    tx.put(CA_TENANT, CA_KIND, name, wrap_record(root, identity, cert, private_key_der(key)))
    return credentials_of([cert], key, ca.pem)


def renewal_due(credentials: ServerCredentials, now: float, validity_days: int) -> bool:
    """Whether the certificate in use should be replaced now (a third of its life left).

    The lifetime is the certificate's own when known, else ``validity_days``.
    """
    lifetime = datetime.timedelta(days=validity_days).total_seconds()
    if credentials.not_before:
        lifetime = credentials.not_after - credentials.not_before
    return now >= credentials.not_after - lifetime * RENEW_WHEN_LEFT


def credentials_of(
    chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey, ca_pem: bytes
) -> ServerCredentials:
    """Credentials serving ``chain`` (leaf first) then ``ca_pem``, with ``key``."""
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    leaf = chain[0]
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return ServerCredentials(
        chain_pem + ca_pem,
        key_pem,
        ca_pem,
        leaf.not_valid_after_utc.timestamp(),
        leaf.not_valid_before_utc.timestamp(),
    )


def new_server_context() -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or newer, no compression, server cipher preference."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    return context


def load_credentials(context: ssl.SSLContext, credentials: ServerCredentials) -> None:
    """Load (or replace, for later handshakes) the certificate and key of ``context``.

    The PEM goes through an anonymous in-memory file (``memfd``) where the platform has
    one, else a private temporary file removed at once.
    """
    blob = credentials.chain_pem + credentials.key_pem
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("strongroom-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, blob)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as private:  # pragma: no cover - non-Linux
        path = Path(private) / "tls.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(blob)
        context.load_cert_chain(str(path))


def server_ssl_context(credentials: ServerCredentials) -> ssl.SSLContext:
    """A server context serving ``credentials``."""
    context = new_server_context()
    load_credentials(context, credentials)
    return context


def file_ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context serving an operator's certificate chain and key files."""
    context = new_server_context()
    context.load_cert_chain(str(cert_file), str(key_file))
    return context
