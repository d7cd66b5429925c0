"""Strongroom's operations beside AWS's: user keys and the mesh authority.

Each has its own ``X-Amz-Target`` prefix and service model and goes to its own backend
call; the app routes to one when the backend implements it (see :mod:`.backend`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from strongroom.api.backend import KmsBackend, MeshBackend, UserKeyBackend
from strongroom.api.shapes import MESH_MODEL_PATH, USER_KEYS_MODEL_PATH, ShapeCodec
from strongroom.kms.caller import Caller

USER_KEYS_MAX_REQUEST_BYTES = 2 * 1024 * 1024
"""Requests of the user-key operations: ``CreateUserKeys`` names up to 10,000 user ids."""

ExtensionCall = Callable[[Caller, str, dict[str, Any], str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Extension:
    """Strongroom operations beside AWS's: their own target prefix, model and backend call."""

    codec: ShapeCodec
    prefix: str
    call: ExtensionCall
    max_request_bytes: int


def extensions_of(backend: KmsBackend, max_request_bytes: int) -> tuple[Extension, ...]:
    """The extension services ``backend`` runs (user keys, the mesh authority)."""
    found = []
    if isinstance(backend, UserKeyBackend):
        codec = ShapeCodec.load(USER_KEYS_MODEL_PATH)
        limit = max(max_request_bytes, USER_KEYS_MAX_REQUEST_BYTES)
        found.append(Extension(codec, codec.target_prefix + ".", backend.call_user_keys, limit))
    if isinstance(backend, MeshBackend):
        codec = ShapeCodec.load(MESH_MODEL_PATH)
        found.append(
            Extension(codec, codec.target_prefix + ".", backend.call_mesh, max_request_bytes)
        )
    return tuple(found)


def extension_index(
    aws_operations: Collection[str], extensions: tuple[Extension, ...]
) -> dict[str, Extension]:
    """Each extension operation's extension; a name defined twice is an error."""
    index: dict[str, Extension] = {}
    for extension in extensions:
        for name in extension.codec.operations:
            if name in aws_operations or name in index:
                raise ValueError(f"operation {name} is defined twice")
            index[name] = extension
    return index
