"""What the Workload API needs from the mesh authority, in process or over HTTP.

:class:`~strongroom.mesh.identity.ca.MeshCA` with
:class:`~strongroom.mesh.identity.registry.Registry` (an agent on the key store,
``--data-dir``) and
:class:`~strongroom.mesh.agent.remote.RemoteMeshAuthority` (an agent of a Strongroom server,
``--endpoint``) both satisfy these protocols.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from strongroom.mesh.identity.jwt_svid import JwtSvid
from strongroom.mesh.identity.registry import RegistrationEntry, Selector
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.identity.svid import X509Svid


class WorkloadAuthority(Protocol):
    """Issues and checks the SVIDs of one trust domain (blocking calls, thread-safe)."""

    @property
    def trust_domain(self) -> TrustDomain:
        """The trust domain it issues for."""
        ...

    def new_svid(self, spiffe_id: SpiffeId | str, ttl_s: float | None = None) -> X509Svid:
        """An X.509-SVID for a fresh key pair (the result holds the private key)."""
        ...

    def trust_bundle_der(self) -> bytes:
        """The X.509 trust anchors as concatenated DER."""
        ...

    def jwt_bundle(self) -> dict[str, Any]:
        """The JWT authorities as a JWK Set."""
        ...

    def new_jwt_svid(
        self, spiffe_id: SpiffeId | str, audience: Iterable[str], ttl_s: float | None = None
    ) -> JwtSvid:
        """A signed JWT-SVID (``AccessDeniedError`` for a revoked identity)."""
        ...

    def validate_jwt_svid(self, token: str, audience: str) -> JwtSvid:
        """Check a JWT-SVID; ``ValidationError`` or ``AccessDeniedError`` if it fails."""
        ...

    def is_revoked(self, subject: SpiffeId | str, *, fresh: bool = False) -> bool:
        """Whether the identity is revoked."""
        ...


class EntrySource(Protocol):
    """The registration entries a workload's attested selectors are matched against."""

    def match(
        self, attested: frozenset[Selector], trust_domain: TrustDomain | None = None
    ) -> list[RegistrationEntry]:
        """The entries a workload with ``attested`` selectors is entitled to."""
        ...
