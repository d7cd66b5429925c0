"""Messages of the mesh authority's operations (target ``StrongroomMesh``).

Generated from ``mesh/strongroom-mesh-2026-11-29.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple


class DeleteMeshEntryRequest(NamedTuple):
    """Request of ``DeleteMeshEntry``."""

    entry_id: str


class DeleteMeshEntryResponse(NamedTuple):
    """Response of ``DeleteMeshEntry``."""

    entry: MeshEntryType | None = None


class GetMeshBundleRequest(NamedTuple):
    """Request of ``GetMeshBundle``."""

    trust_domain: str


class GetMeshBundleResponse(NamedTuple):
    """Response of ``GetMeshBundle``."""

    trust_domain: str | None = None
    x509_authorities: bytes | None = None
    jwt_authorities: str | None = None
    spiffe_bundle: str | None = None


class IssueJwtSvidRequest(NamedTuple):
    """Request of ``IssueJwtSvid``."""

    spiffe_id: str
    audience: Sequence[str]
    ttl_seconds: int | None = None


class IssueJwtSvidResponse(NamedTuple):
    """Response of ``IssueJwtSvid``."""

    spiffe_id: str | None = None
    token: str | None = None


class IssueX509SvidRequest(NamedTuple):
    """Request of ``IssueX509Svid``."""

    spiffe_id: str
    public_key: bytes
    ttl_seconds: int | None = None


class IssueX509SvidResponse(NamedTuple):
    """Response of ``IssueX509Svid``."""

    spiffe_id: str | None = None
    certificate_chain: bytes | None = None
    expires_at: float | None = None


class ListMeshEntriesRequest(NamedTuple):
    """Request of ``ListMeshEntries``."""

    trust_domain: str | None = None


class ListMeshEntriesResponse(NamedTuple):
    """Response of ``ListMeshEntries``."""

    entries: Sequence[MeshEntryType] | None = None


class ListRevokedIdsRequest(NamedTuple):
    """Request of ``ListRevokedIds``."""

    trust_domain: str


class ListRevokedIdsResponse(NamedTuple):
    """Response of ``ListRevokedIds``."""

    spiffe_ids: Sequence[str] | None = None


class RegisterMeshEntryRequest(NamedTuple):
    """Request of ``RegisterMeshEntry``."""

    spiffe_id: str
    selectors: Sequence[str]
    node: str | None = None


class RegisterMeshEntryResponse(NamedTuple):
    """Response of ``RegisterMeshEntry``."""

    entry: MeshEntryType | None = None


class RevokeMeshIdRequest(NamedTuple):
    """Request of ``RevokeMeshId``."""

    spiffe_id: str


class RevokeMeshIdResponse(NamedTuple):
    """Response of ``RevokeMeshId``."""

    spiffe_id: str | None = None
    already_revoked: bool | None = None


class ValidateJwtSvidRequest(NamedTuple):
    """Request of ``ValidateJwtSvid``."""

    trust_domain: str
    token: str
    audience: str


class ValidateJwtSvidResponse(NamedTuple):
    """Response of ``ValidateJwtSvid``."""

    spiffe_id: str | None = None
    claims: str | None = None


class MeshEntryType(NamedTuple):
    """Shape ``MeshEntryType`` of the model."""

    entry_id: str | None = None
    spiffe_id: str | None = None
    selectors: Sequence[str] | None = None
    created_at: float | None = None
    node: str | None = None


SHAPES: dict[str, type[tuple[Any, ...]]] = {
    "DeleteMeshEntryRequest": DeleteMeshEntryRequest,
    "DeleteMeshEntryResponse": DeleteMeshEntryResponse,
    "GetMeshBundleRequest": GetMeshBundleRequest,
    "GetMeshBundleResponse": GetMeshBundleResponse,
    "IssueJwtSvidRequest": IssueJwtSvidRequest,
    "IssueJwtSvidResponse": IssueJwtSvidResponse,
    "IssueX509SvidRequest": IssueX509SvidRequest,
    "IssueX509SvidResponse": IssueX509SvidResponse,
    "ListMeshEntriesRequest": ListMeshEntriesRequest,
    "ListMeshEntriesResponse": ListMeshEntriesResponse,
    "ListRevokedIdsRequest": ListRevokedIdsRequest,
    "ListRevokedIdsResponse": ListRevokedIdsResponse,
    "MeshEntryType": MeshEntryType,
    "RegisterMeshEntryRequest": RegisterMeshEntryRequest,
    "RegisterMeshEntryResponse": RegisterMeshEntryResponse,
    "RevokeMeshIdRequest": RevokeMeshIdRequest,
    "RevokeMeshIdResponse": RevokeMeshIdResponse,
    "ValidateJwtSvidRequest": ValidateJwtSvidRequest,
    "ValidateJwtSvidResponse": ValidateJwtSvidResponse,
}
"""Every generated message class, by its shape name in the model."""
