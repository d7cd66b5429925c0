"""The one builder of end-entity certificates: server, client and mesh (SVID) leaves.

Every leaf Strongroom signs has the same profile: ``cA`` false (critical),
``digitalSignature`` as its only key usage (critical, the right use for ECDSA keys),
the extended key usages of its role, an authority key identifier naming the issuer's
key, and an ECDSA-with-SHA-256 signature. What differs is passed in: the subject, the
validity, the SANs, whether a subject key identifier is added. :func:`key_usage` is the
key usage extension of every certificate Strongroom makes. Used by the instance CA
(:mod:`strongroom.tls.ca`: server and KMIP client certificates) and the mesh
(:func:`strongroom.mesh.identity.svid.sign_svid`).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def key_usage(*, digital_signature: bool = True, cert_sign: bool = False) -> x509.KeyUsage:
    """The key usage extension of an ECDSA key: by default ``digitalSignature`` alone.

    ``cert_sign`` adds ``keyCertSign`` and ``cRLSign`` (a CA's); nothing else is ever set.
    """
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def sign_leaf(
    *,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    usages: Sequence[x509.ObjectIdentifier],
    sans: Sequence[x509.GeneralName] | None = None,
    key_identifier: bool = True,
) -> x509.Certificate:
    """An end-entity certificate for ``public_key``, signed by ``issuer_key``.

    ``usages`` are the extended key usages (``serverAuth``, ``clientAuth``); ``sans``,
    when given, the subject alternative names; ``key_identifier`` adds a subject key
    identifier. A random serial number.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if key_identifier:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
        critical=False,
    )
    return builder.sign(issuer_key, hashes.SHA256())
