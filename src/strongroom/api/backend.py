"""What the API needs from the key service: two methods, so ``api`` never imports the core.

A backend that also has ``call_user_keys`` (:class:`UserKeyBackend`) serves Strongroom's
user-key operations (``X-Amz-Target: StrongroomUserKeys.<Operation>``) too; one with
``call_mesh`` (:class:`MeshBackend`) the mesh authority (``StrongroomMesh.<Operation>``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from strongroom.kms.caller import AccessKey, Caller


class KmsBackend(Protocol):
    """The key service as the HTTP layer sees it (``strongroom.kms.KeyService`` is one).

    Both methods are synchronous and may do I/O; the app calls them off the event loop.
    """

    def lookup_access_key(self, access_key_id: str) -> AccessKey | None:
        """Return the access key with this id, or ``None`` if there is none (or it is off)."""
        ...

    def call(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """Run one AWS KMS operation (``"Encrypt"``...) for ``caller``.

        ``request`` is the JSON body with blob members already decoded to ``bytes``; the
        returned dict has blob members as ``bytes``. Failures are raised as subclasses of
        :class:`strongroom.errors.StrongroomError`.
        """
        ...


@runtime_checkable
class UserKeyBackend(KmsBackend, Protocol):
    """A backend that also runs Strongroom's user-key operations (``KeyService`` does)."""

    def call_user_keys(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """Run one user-key operation (``"CreateUserKeys"``...) for ``caller``, as :meth:`call`."""
        ...


@runtime_checkable
class MeshBackend(Protocol):
    """A backend that also runs the mesh authority's operations (``GetMeshBundle``...)."""

    def call_mesh(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """Run one mesh operation for ``caller``, as :meth:`KmsBackend.call`."""
        ...
