"""What the API needs from the key service: two methods, so ``api`` never imports the core.

A backend with a ``hot_path`` attribute (:class:`HotKeyService`) serves the hot
operations' plain requests through it (:mod:`strongroom.api.hot_json`); a backend that
also has ``call_user_keys`` (:class:`UserKeyBackend`) serves Strongroom's
user-key operations (``X-Amz-Target: StrongroomUserKeys.<Operation>``) too; one with
``call_mesh`` (:class:`MeshBackend`) the mesh authority (``StrongroomMesh.<Operation>``).
"""

from __future__ import annotations

from collections.abc import Mapping
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


class HotKeyService(Protocol):
    """Typed entries of the hot operations (``KeyService.hot_path``, a ``HotPath``, is one).

    Each returns the response fields of a success, or ``None`` before any effect: then the
    request goes through :meth:`KmsBackend.call`, which answers or raises.
    """

    def encrypt(
        self,
        caller: Caller,
        request_id: str,
        key_id: str,
        plaintext: bytes,
        context: Mapping[str, str] | None,
    ) -> tuple[bytes, str] | None:
        """``Encrypt``: the ciphertext blob and the key ARN."""
        ...

    def decrypt(
        self,
        caller: Caller,
        request_id: str,
        blob: bytes,
        context: Mapping[str, str] | None,
        key_id: str | None,
    ) -> tuple[str, str, bytes] | None:
        """``Decrypt``: the key ARN, ``KeyMaterialId`` and plaintext."""
        ...

    def generate_data_key(
        self,
        caller: Caller,
        request_id: str,
        key_id: str,
        size: int,
        context: Mapping[str, str] | None,
    ) -> tuple[bytes, str, str, bytes] | None:
        """``GenerateDataKey``: the blob, key ARN, ``KeyMaterialId`` and plaintext."""
        ...
