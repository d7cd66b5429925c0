"""Managing the mesh: registrations, revocations and bundles, on the key store or over HTTP.

``strongroom mesh register|entries|unregister|revoke|revoked|bundle`` work on either
:class:`LocalMeshAdmin` (``--data-dir``: the key store and root of trust of this machine)
or :class:`RemoteMeshAdmin` (``--endpoint``: a Strongroom server's ``StrongroomMesh``
operations, signed with an access key created with ``--mesh-admin``). Both satisfy
:class:`MeshAdministration`, so the commands read the same either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization

from strongroom.awsjson.client import SignedJsonClient, reply_blob
from strongroom.errors import KMSInternalError, ValidationError
from strongroom.mesh.api_ops import MESH_TARGET_PREFIX
from strongroom.mesh.identity.ca import MeshCA
from strongroom.mesh.identity.registry import RegistrationEntry, Registry, Selector
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.identity.svid import certificates_from_der
from strongroom.ports import Clock, RootOfTrust, Store


class MeshAdministration(Protocol):
    """What an operator does to the mesh (blocking calls)."""

    def register(
        self, spiffe_id: str, selectors: Sequence[str], node: str | None = None
    ) -> RegistrationEntry:
        """Add an entry: workloads with all ``selectors`` (on ``node`` if given) get it."""

    def unregister(self, entry_id: str) -> RegistrationEntry:
        """Delete an entry; return it."""

    def entries(self, trust_domain: str | None = None) -> list[RegistrationEntry]:
        """The entries (of ``trust_domain`` if given), by SPIFFE ID."""

    def revoke(self, spiffe_id: str) -> bool:
        """Revoke an identity; ``False`` if it was revoked already."""

    def revoked(self, trust_domain: str) -> list[str]:
        """The revoked identities of a trust domain, sorted."""

    def bundle_pem(self, trust_domain: str) -> bytes:
        """The trust domain's X.509 authorities as PEM."""

    def spiffe_bundle(self, trust_domain: str) -> dict[str, Any]:
        """The trust domain's SPIFFE bundle (a JWK Set)."""

    def close(self) -> None:
        """Release the store or the HTTP connections."""


class LocalMeshAdmin:
    """:class:`MeshAdministration` on a key store; the root of trust is opened on demand.

    Registering and listing need only the store; revocations and bundles need the trust
    domain's CA, whose keys the root of trust unwraps (created on first use).
    """

    def __init__(self, store: Store, open_root: Callable[[], RootOfTrust], clock: Clock) -> None:
        self._store = store
        self._open_root = open_root
        self._root: RootOfTrust | None = None
        self._clock = clock
        self._registry = Registry(store, clock)

    def _ca(self, trust_domain: str | TrustDomain) -> MeshCA:
        if self._root is None:
            self._root = self._open_root()
        return MeshCA.create(trust_domain, self._store, self._root, self._clock)

    def register(
        self, spiffe_id: str, selectors: Sequence[str], node: str | None = None
    ) -> RegistrationEntry:
        """Add an entry to the store."""
        return self._registry.register(spiffe_id, selectors, node)

    def unregister(self, entry_id: str) -> RegistrationEntry:
        """Delete an entry from the store."""
        return self._registry.unregister(entry_id)

    def entries(self, trust_domain: str | None = None) -> list[RegistrationEntry]:
        """The stored entries."""
        domain = None if trust_domain is None else TrustDomain.parse(trust_domain)
        return self._registry.entries(domain)

    def revoke(self, spiffe_id: str) -> bool:
        """Revoke through the trust domain's CA."""
        sid = SpiffeId.parse(spiffe_id)
        return self._ca(sid.trust_domain).revoke(sid)

    def revoked(self, trust_domain: str) -> list[str]:
        """The CA's revoked identities."""
        return sorted(self._ca(trust_domain).revoked())

    def bundle_pem(self, trust_domain: str) -> bytes:
        """The CA's trust bundle as PEM."""
        return self._ca(trust_domain).trust_bundle_pem()

    def spiffe_bundle(self, trust_domain: str) -> dict[str, Any]:
        """The CA's SPIFFE bundle."""
        return self._ca(trust_domain).spiffe_bundle()

    def close(self) -> None:
        """Close the store."""
        self._store.close()


class RemoteMeshAdmin:
    """:class:`MeshAdministration` over a Strongroom server's ``StrongroomMesh`` operations."""

    def __init__(self, client: SignedJsonClient) -> None:
        self._client = client

    @classmethod
    def connect(
        cls,
        *,
        endpoint_url: str,
        region: str | None = None,
        ca_bundle: str | None = None,
        profile: str | None = None,
    ) -> RemoteMeshAdmin:
        """Use the standard AWS chain's credentials (a key created with ``--mesh-admin``)."""
        return cls(
            SignedJsonClient.connect(
                MESH_TARGET_PREFIX,
                endpoint_url=endpoint_url,
                region=region,
                ca_bundle=ca_bundle,
                profile=profile,
            )
        )

    def register(
        self, spiffe_id: str, selectors: Sequence[str], node: str | None = None
    ) -> RegistrationEntry:
        """``RegisterMeshEntry``."""
        request: dict[str, Any] = {"SpiffeId": spiffe_id, "Selectors": list(selectors)}
        if node is not None:
            request["Node"] = node
        reply = self._client.call("RegisterMeshEntry", request)
        return entry_of_reply(reply.get("Entry"))

    def unregister(self, entry_id: str) -> RegistrationEntry:
        """``DeleteMeshEntry``."""
        return entry_of_reply(
            self._client.call("DeleteMeshEntry", {"EntryId": entry_id}).get("Entry")
        )

    def entries(self, trust_domain: str | None = None) -> list[RegistrationEntry]:
        """``ListMeshEntries``."""
        request = {} if trust_domain is None else {"TrustDomain": trust_domain}
        reply = self._client.call("ListMeshEntries", request)
        items = reply.get("Entries", [])
        if not isinstance(items, list):
            raise KMSInternalError("The key service sent damaged registration entries.")
        return [entry_of_reply(item) for item in items]

    def revoke(self, spiffe_id: str) -> bool:
        """``RevokeMeshId``."""
        reply = self._client.call("RevokeMeshId", {"SpiffeId": spiffe_id})
        return not bool(reply.get("AlreadyRevoked"))

    def revoked(self, trust_domain: str) -> list[str]:
        """``ListRevokedIds``."""
        reply = self._client.call("ListRevokedIds", {"TrustDomain": trust_domain})
        return sorted(str(i) for i in reply.get("SpiffeIds", []))

    def _bundle(self, trust_domain: str) -> dict[str, Any]:
        return self._client.call("GetMeshBundle", {"TrustDomain": trust_domain})

    def bundle_pem(self, trust_domain: str) -> bytes:
        """``GetMeshBundle``: the X.509 authorities, checked and written as PEM."""
        anchors = reply_blob(self._bundle(trust_domain), "X509Authorities")
        try:
            certificates = certificates_from_der(anchors)
        except (ValueError, ValidationError):
            raise KMSInternalError("The key service sent a damaged trust bundle.") from None
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)

    def spiffe_bundle(self, trust_domain: str) -> dict[str, Any]:
        """``GetMeshBundle``: the SPIFFE bundle."""
        try:
            bundle = json.loads(str(self._bundle(trust_domain)["SpiffeBundle"]))
        except (KeyError, ValueError):
            raise KMSInternalError("The key service sent a damaged SPIFFE bundle.") from None
        if not isinstance(bundle, dict):
            raise KMSInternalError("The key service sent a damaged SPIFFE bundle.")
        return bundle

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __repr__(self) -> str:
        return f"RemoteMeshAdmin(endpoint_url={self._client.endpoint_url!r})"


def entry_of_reply(item: Any) -> RegistrationEntry:
    """A registration entry as the server sent it (``KMSInternalError`` if damaged)."""
    try:
        return RegistrationEntry(
            str(item["EntryId"]),
            SpiffeId.parse(str(item["SpiffeId"])),
            tuple(Selector.parse(str(s)) for s in item["Selectors"]),
            float(item.get("CreatedAt") or 0.0),
            None if item.get("Node") is None else str(item["Node"]),
        )
    except (KeyError, TypeError, ValueError, ValidationError):
        raise KMSInternalError("The key service sent a damaged registration entry.") from None
