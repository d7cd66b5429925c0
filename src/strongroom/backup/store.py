"""Where a repository's files live: a local directory or an S3 bucket (write-once files).

:class:`RepoStore` is the small interface the repository needs. Every file but locks is
named by its content and written once; :meth:`RepoStore.put` of an existing name is a
no-op. Deletion happens only in ``forget``, ``prune`` and ``rotate-key``, and a backend
under S3 Object Lock refuses to delete a retained file (:class:`ObjectLockedError`).

:class:`LocalStore` keeps files through :class:`~strongroom.data.objects_local.LocalBackend`
(atomic, fsynced writes). :mod:`strongroom.backup.s3` is the S3 backend.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from strongroom.data.objects_local import LocalBackend
from strongroom.errors import NotFoundError, ValidationError


class RepoStore(Protocol):
    """Write-once files under names like ``data/ab/<hex>``.

    Guarantees: a file becomes visible only whole; a missing file raises
    :class:`~strongroom.errors.NotFoundError`; ``list`` is sorted.
    """

    def put(self, name: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        """Write ``data`` as ``name`` unless a file of that name exists already."""
        ...

    def get(self, name: str) -> bytes:
        """The whole file."""
        ...

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end of the file)."""
        ...

    def delete(self, name: str) -> None:
        """Remove the file (``ObjectLockedError`` if retention forbids it)."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Names starting with ``prefix``, sorted."""
        ...

    def exists(self, name: str) -> bool:
        """Whether ``name`` exists."""
        ...

    def size(self, name: str) -> int:
        """The file's size in bytes."""
        ...

    def extend_retention(self, name: str, until: datetime) -> None:
        """Make ``name`` retained at least until ``until`` (no-op where unsupported)."""
        ...

    def retained_until(self, name: str) -> datetime | None:
        """When the file's retention ends (``None``: it can be deleted now)."""
        ...

    def describe(self) -> str:
        """Where the repository is, for messages."""
        ...


class LocalStore:
    """A repository in a local directory (created at ``init``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._backend = LocalBackend(root)
        self.root = Path(root)

    def put(self, name: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        """Write the file atomically and durably (skipped when it exists)."""
        if retain_until is not None:
            raise ValidationError("Retention (S3 Object Lock) needs an S3 repository.")
        if self._backend.path_of(name).exists():
            return
        with self._backend.create(name) as sink:
            sink.write(data)

    def get(self, name: str) -> bytes:
        """The file's bytes."""
        return self._backend.read(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """Read a range with one ``pread``."""
        try:
            fd = os.open(self._backend.path_of(name), os.O_RDONLY)
        except FileNotFoundError:
            raise NotFoundError(f"Repository file {name!r} does not exist.") from None
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def delete(self, name: str) -> None:
        """Unlink the file."""
        self._backend.delete(name)

    def list(self, prefix: str) -> Iterator[str]:
        """Names under ``prefix``."""
        if not self.root.is_dir():
            return iter(())
        return self._backend.keys(prefix)

    def exists(self, name: str) -> bool:
        """Whether the file exists."""
        return self._backend.path_of(name).exists()

    def size(self, name: str) -> int:
        """The file's size."""
        try:
            return self._backend.path_of(name).stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"Repository file {name!r} does not exist.") from None

    def extend_retention(self, name: str, until: datetime) -> None:
        """Local directories have no retention."""

    def retained_until(self, name: str) -> datetime | None:
        """Local directories have no retention."""
        return None

    def describe(self) -> str:
        """The directory."""
        return str(self.root)

    def path_of(self, name: str) -> Path:
        """The file that holds ``name`` (tests flip its bytes)."""
        return self._backend.path_of(name)

    def remove_partial_files(self) -> int:
        """Remove temporary files a killed writer left; how many."""
        count = 0
        for path in self.root.rglob(".tmp-*.part"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                count += 1
        return count
