"""The root of trust port: wrap and unwrap keys under a key that never leaves it.

``strongroom.rootkey`` holds the implementations (PKCS#11 HSM, local key file).
"""

from __future__ import annotations

from typing import Protocol


class RootOfTrust(Protocol):
    """The root of the key hierarchy: wraps and unwraps tenant keys, never exports its own.

    ``identity`` is bound into every wrap (as AES-GCM associated data), so a wrapped key
    only unwraps for the identity it was wrapped for. Failures raise
    :class:`strongroom.errors.RootOfTrustError` without detail about the key material.
    """

    @property
    def description(self) -> str:
        """A short, secret-free name for logs and ``DescribeKey`` (``local``, ``pkcs11``)."""
        ...

    def wrap(self, material: bytes, identity: bytes) -> bytes:
        """Encrypt ``material`` under the root key, bound to ``identity``."""
        ...

    def unwrap(self, wrapped: bytes, identity: bytes) -> bytes:
        """Reverse :meth:`wrap`; raise ``RootOfTrustError`` if anything does not match."""
        ...

    def close(self) -> None:
        """Release sessions and handles."""
        ...
