"""Encryption in transit: workload identities, the Workload API agent, the proxies.

- :mod:`strongroom.mesh.identity`: SPIFFE IDs, SVIDs, bundles, the mesh CA
  (:class:`MeshCA`) and registration entries;
- :mod:`strongroom.mesh.agent`: the SPIFFE Workload API on a unix socket;
- :mod:`strongroom.mesh.proxy`: the mTLS sidecar and the egress proxy;
- :mod:`strongroom.mesh.admin` and :mod:`strongroom.mesh.api_ops`: managing the mesh, and
  the ``StrongroomMesh`` operations of the server.
"""

from strongroom.mesh.identity.ca import DEFAULT_SVID_TTL_S, MeshCA
from strongroom.mesh.identity.jwt_svid import JwtSvid
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.identity.svid import X509Svid, spiffe_id_of

__all__ = [
    "DEFAULT_SVID_TTL_S",
    "JwtSvid",
    "MeshCA",
    "SpiffeId",
    "TrustDomain",
    "X509Svid",
    "spiffe_id_of",
]
