"""Trust bundles in the SPIFFE bundle format: a JWK Set (RFC 7517) with SPIFFE members.

An ``x509-svid`` key is the root CA's public key with the certificate in ``x5c``; a
``jwt-svid`` key is the JWT signing key with its ``kid``. ``spiffe_sequence`` counts
changes of the bundle and ``spiffe_refresh_hint`` says (in seconds) how often to refetch.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import ValidationError
from strongroom.mesh.identity.authority import Authority
from strongroom.mesh.identity.jwt_svid import COORDINATE_BYTES, b64url


def ec_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The JWK members of a P-256 public key."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValidationError("only P-256 keys are published")
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(COORDINATE_BYTES, "big")),
        "y": b64url(numbers.y.to_bytes(COORDINATE_BYTES, "big")),
    }


def x509_jwk(cert: x509.Certificate) -> dict[str, Any]:
    """The ``x509-svid`` JWK of a CA certificate."""
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValidationError("only ECDSA CA certificates are published")
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "use": "x509-svid",
        **ec_jwk(public),
        "x5c": [base64.b64encode(der).decode("ascii")],
    }


def jwt_jwk(authority: Authority) -> dict[str, Any]:
    """The ``jwt-svid`` JWK of the trust domain's JWT signing key."""
    return {"use": "jwt-svid", "kid": authority.jwt_key.kid, **ec_jwk(authority.jwt_key.public_key)}


def spiffe_bundle(authority: Authority, refresh_hint_s: int) -> dict[str, Any]:
    """The full SPIFFE bundle of a trust domain."""
    return {
        "keys": [x509_jwk(authority.root_certificate), jwt_jwk(authority)],
        "spiffe_sequence": authority.jwt_key.sequence,
        "spiffe_refresh_hint": refresh_hint_s,
    }


def jwt_bundle(authority: Authority) -> dict[str, Any]:
    """The JWT bundle (``FetchJWTBundles``): the ``jwt-svid`` keys only."""
    return {"keys": [jwt_jwk(authority)]}
