"""The development root of trust: a 256-bit master key in a 0600 file.

For laptops and tests. The key is read once and kept in memory; production deployments use
:mod:`strongroom.rootkey.pkcs11`, where the root key never leaves the HSM.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from strongroom.crypto.hazmat import KEY_BYTES, new_key
from strongroom.crypto.wrap import UnwrapFailed, unwrap_key, wrap_key
from strongroom.errors import RootOfTrustError


class LocalRootOfTrust:
    """A :class:`~strongroom.ports.RootOfTrust` backed by a master key file."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise RootOfTrustError("the master key must be 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "LocalRootOfTrust(<master key hidden>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a root of trust cannot be pickled")

    @classmethod
    def create(cls, path: str | Path) -> LocalRootOfTrust:
        """Write a new random master key to ``path`` (mode 0600, never overwriting)."""
        key = new_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise RootOfTrustError(f"master key file {path} exists already") from exc
        except OSError as exc:
            raise RootOfTrustError(f"cannot create master key file {path}") from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        return cls(key)

    @classmethod
    def load(cls, path: str | Path) -> LocalRootOfTrust:
        """Read the master key from ``path``; refuse a file others can read."""
        try:
            mode = os.stat(path).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise RootOfTrustError(f"master key file {path} must be mode 0600")
            key = Path(path).read_bytes()
        except OSError as exc:
            raise RootOfTrustError(f"cannot read master key file {path}") from exc
        return cls(key)

    @property
    def description(self) -> str:
        """``local``."""
        return "local"

    def wrap(self, material: bytes, identity: bytes) -> bytes:
        """Encrypt ``material`` under the master key bound to ``identity``."""
        return wrap_key(self._key, material, identity)

    def unwrap(self, wrapped: bytes, identity: bytes) -> bytes:
        """Decrypt a wrapped key; any mismatch raises ``RootOfTrustError``."""
        try:
            return unwrap_key(self._key, wrapped, identity)
        except UnwrapFailed as exc:
            raise RootOfTrustError("the root of trust could not unwrap a key") from exc

    def close(self) -> None:
        """Nothing to release."""
