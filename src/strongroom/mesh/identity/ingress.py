"""The HTTPS certificate of ``strongroom server`` from the mesh CA (``--tls-from-mesh``).

The server's certificate is then an X.509-SVID of the trust domain with the SPIFFE ID
``spiffe://TD/strongroom/server`` (its one URI SAN) and the server's DNS names and IP
addresses as further SANs, so both kinds of client verify it: a SPIFFE client (or the
mesh sidecar) by the ID against the trust bundle, an ordinary HTTPS client by host name
against the same bundle (``DATA_DIR/mesh-TD.pem``). It lives
:data:`MESH_SERVER_TTL_S` (a day) and is renewed, like the instance CA's, once a third of
its life is left. It is kept like the CA keys: wrapped by the root of trust in the key
store (``("_global", "meshca", "TD/server/<digest>")``), so every worker and node over
one store serves the same one.

:func:`server_credentials` is :func:`strongroom.tls.server_credentials` that hands a
:class:`~strongroom.tls.SubjectNames` with a ``spiffe_id`` to
:func:`mesh_server_credentials` (``tls`` does not import the mesh); everything runs in
the caller's write transaction.
"""

from __future__ import annotations

import ipaddress

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import AccessDeniedError, ValidationError
from strongroom.mesh.identity.authority import MESH_CA_KIND, load_or_create_authority, record_name
from strongroom.mesh.identity.ca import REVOKED_KIND
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.identity.svid import IPAddress, sign_svid
from strongroom.ports import GLOBAL_TENANT, RootOfTrust, Store, StoreTx
from strongroom.tls.ca import private_key_der, unwrap_record, wrap_record
from strongroom.tls.server_cert import (
    SERVER_VALIDITY_DAYS,
    ServerCredentials,
    SubjectNames,
    credentials_of,
)
from strongroom.tls.server_cert import server_credentials as instance_server_credentials

SERVER_PATH = "/strongroom/server"
MESH_SERVER_TTL_S = 86400.0
RENEW_WHEN_LEFT = 1 / 3


def server_spiffe_id(trust_domain: str) -> str:
    """``spiffe://TD/strongroom/server``: the ID the server's certificate carries."""
    return str(SpiffeId.of(TrustDomain.parse(trust_domain), SERVER_PATH))


def mesh_bundle_pem(store: Store, root: RootOfTrust, trust_domain: str, now: float) -> bytes:
    """The trust domain's root certificate (PEM), creating the mesh CA on first use."""
    domain = TrustDomain.parse(trust_domain)
    authority = store.write(lambda tx: load_or_create_authority(tx, root, domain, now))
    return authority.root_certificate.public_bytes(serialization.Encoding.PEM)


def mesh_server_credentials(
    tx: StoreTx, root: RootOfTrust, names: SubjectNames, now: float
) -> ServerCredentials:
    """The stored mesh certificate for ``names``, issuing one if missing or near expiry."""
    if names.spiffe_id is None:
        raise ValidationError("a certificate from the mesh CA needs a SPIFFE ID")
    sid = SpiffeId.parse(names.spiffe_id)
    if not sid.path:
        raise ValidationError("the server's SPIFFE ID has a path")
    if tx.get(GLOBAL_TENANT, REVOKED_KIND, str(sid)) is not None:
        raise AccessDeniedError(f"{sid} is revoked: no certificate is issued for it")
    authority = load_or_create_authority(tx, root, sid.trust_domain, now)
    name = record_name(sid.trust_domain, f"server/{names.digest}")
    identity = (MESH_CA_KIND, name)
    raw = tx.get_for_update(GLOBAL_TENANT, MESH_CA_KIND, name)
    root_pem = authority.root_certificate.public_bytes(serialization.Encoding.PEM)
    if raw is not None:
        cert, key = unwrap_record(root, identity, raw)
        start = cert.not_valid_before_utc.timestamp()
        end = cert.not_valid_after_utc.timestamp()
        if (
            now < end - (end - start) * RENEW_WHEN_LEFT
            and cert.issuer == authority.intermediate_certificate.subject
        ):
            chain = [cert, authority.intermediate_certificate]
            return credentials_of(chain, key, root_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    others: list[str | IPAddress] = list(names.dns_names)
    others += [ipaddress.ip_address(a) for a in names.ip_addresses]
    svid = sign_svid(authority, sid, key.public_key(), now, MESH_SERVER_TTL_S, others)
    tx.put(
        GLOBAL_TENANT,
        MESH_CA_KIND,
        name,
        wrap_record(root, identity, svid.leaf, private_key_der(key)),
    )
    return credentials_of(list(svid.cert_chain), key, root_pem)


def server_credentials(
    tx: StoreTx,
    root: RootOfTrust,
    names: SubjectNames,
    now: float,
    validity_days: int = SERVER_VALIDITY_DAYS,
) -> ServerCredentials:
    """The server's certificate: from the mesh CA with ``names.spiffe_id``, else the instance CA.

    Run it in a write transaction (it may create a CA and store a new certificate).
    """
    return instance_server_credentials(
        tx, root, names, now, validity_days, issue_mesh=mesh_server_credentials
    )
