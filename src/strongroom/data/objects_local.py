"""Object backend on a local directory: atomic, durable writes; names as paths.

Key ``"a/b/c"`` is stored as ``ROOT/a.d/b.d/c.o``: every directory segment ends in
``.d`` and every object file in ``.o``, so an object ``a`` and an object ``a/b`` live side
by side (``a.o`` and ``a.d/b.o``) and no name (``..`` included) can leave ``ROOT``.

A write goes to a temporary file in the object's own directory (``.tmp-*.part``), which
is flushed and fsynced, renamed over the object, and the directory fsynced: readers see
the old object or the new one, never a part, and a crash leaves at most a stray
temporary file (ignored by listings).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from strongroom.errors import NotFoundError
from strongroom.files import atomic_write, fsync_dir

DIR_SUFFIX = ".d"
FILE_SUFFIX = ".o"
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".part"


class LocalBackend:
    """Objects as files under ``root`` (created on first write, mode 0700)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        """The directory objects live in."""
        return self._root

    def path_of(self, key: str) -> Path:
        """The file that holds ``key``."""
        *dirs, last = key.split("/")
        return self._root.joinpath(*(d + DIR_SUFFIX for d in dirs), last + FILE_SUFFIX)

    @contextlib.contextmanager
    def create(self, key: str) -> Iterator[BinaryIO]:
        """A temporary file, renamed over the object when the block ends cleanly."""
        path = self.path_of(key)
        self._make_dirs(path.parent)
        with atomic_write(path, TEMP_PREFIX, TEMP_SUFFIX) as sink:
            yield sink

    def open(self, key: str) -> io.BufferedReader:
        """The object's file, open for reading."""
        try:
            return open(self.path_of(key), "rb")
        except FileNotFoundError:
            raise _missing(key) from None

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        try:
            return self.path_of(key).read_bytes()
        except FileNotFoundError:
            raise _missing(key) from None

    def delete(self, key: str) -> None:
        """Unlink the object's file (durably); empty directories stay."""
        path = self.path_of(key)
        try:
            path.unlink()
        except FileNotFoundError:
            raise _missing(key) from None
        fsync_dir(path.parent)

    def keys(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix``, sorted; temporary and foreign files are skipped."""
        *dirs, _ = prefix.split("/")
        start = self._root.joinpath(*(d + DIR_SUFFIX for d in dirs))
        found: list[str] = []
        for here, subdirs, files in os.walk(start):
            subdirs[:] = [d for d in subdirs if d.endswith(DIR_SUFFIX)]
            parts = Path(here).relative_to(self._root).parts
            head = "".join(p[: -len(DIR_SUFFIX)] + "/" for p in parts)
            for name in files:
                if name.endswith(FILE_SUFFIX):  # temporary files end in .part
                    key = head + name[: -len(FILE_SUFFIX)]
                    if key.startswith(prefix):
                        found.append(key)
        return iter(sorted(found))

    def _make_dirs(self, path: Path) -> None:
        """Create ``path`` and its missing parents, each made durable in its parent."""
        if path.is_dir():
            return
        missing: list[Path] = []
        while not path.is_dir():
            missing.append(path)
            path = path.parent
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                directory.mkdir(mode=0o700)
            fsync_dir(directory.parent)

    def __repr__(self) -> str:
        return f"LocalBackend({str(self._root)!r})"


def _missing(key: str) -> NotFoundError:
    return NotFoundError(f"Object {key!r} does not exist.")
