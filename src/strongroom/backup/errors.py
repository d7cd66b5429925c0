"""Errors of backup repositories, in the one tree rooted at StrongroomError.

::

    InvalidCiphertextError
    └── CorruptError         an object failed its checks (any cause: one message, no detail)
    ClientError
    ├── RepositoryLockedError    another writer or prune holds a conflicting lock
    ├── ObjectLockedError        the store refuses to delete an object under retention
    └── FuseUnavailableError     ``backup mount`` cannot mount on this machine (and why)
"""

from __future__ import annotations

from strongroom.errors import ClientError, InvalidCiphertextError


class CorruptError(InvalidCiphertextError):
    """A repository object is corrupt, truncated, swapped or forged."""


class RepositoryLockedError(ClientError):
    """A conflicting lock is held (a prune while writers run, or the other way round)."""


class ObjectLockedError(ClientError):
    """The backend refused a delete because of S3 Object Lock retention."""


class FuseUnavailableError(ClientError):
    """FUSE cannot work here: no ``/dev/fuse``, no libfuse, no binding, no permission."""
