"""Encryption in transit: the mesh CA, workload registration and the SPIFFE Workload API.

- :mod:`strongroom.mesh.spiffe_id`: SPIFFE IDs and trust domains, validated.
- :mod:`strongroom.mesh.ca`: :class:`MeshCA`, the CA of a trust domain (X.509-SVIDs,
  JWT-SVIDs, revocation, trust bundles); keys in :mod:`strongroom.mesh.authority`.
- :mod:`strongroom.mesh.svid`: :class:`X509Svid`, the issued chain (and key).
"""

from strongroom.mesh.ca import DEFAULT_SVID_TTL_S, MeshCA
from strongroom.mesh.jwt_svid import JwtSvid
from strongroom.mesh.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.svid import X509Svid, spiffe_id_of

__all__ = [
    "DEFAULT_SVID_TTL_S",
    "JwtSvid",
    "MeshCA",
    "SpiffeId",
    "TrustDomain",
    "X509Svid",
    "spiffe_id_of",
]
