"""Object backend on a local directory: atomic, durable writes; names as paths.

Key ``"a/b/c"`` is stored as ``ROOT/a.d/b.d/c.o``: every directory segment ends in
``.d`` and every object file in ``.o``, so an object ``a`` and an object ``a/b`` live side
by side (``a.o`` and ``a.d/b.o``) and no name (``..`` included) can leave ``ROOT``.

A write goes to a temporary file in the object's own directory (``.tmp-*.part``), which
is flushed and fsynced, renamed over the object, and the directory fsynced: readers see
the old object or the new one, never a part, and a crash leaves at most a stray
temporary file (ignored by listings).

Nothing inside ``ROOT`` is followed if it is a symbolic link: every directory segment and
the object file are opened one at a time relative to their parent's descriptor with
``O_NOFOLLOW`` (the ``ROOT`` itself may be a link the operator chose). A link planted in
the store, to a directory or a file elsewhere, is refused (:class:`StoreError`), never
read through or written through.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from strongroom.errors import NotFoundError, StoreError
from strongroom.files import atomic_write, fsync_dir

DIR_SUFFIX = ".d"
FILE_SUFFIX = ".o"
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"


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
        *dirs, last = key.split("/")
        directory = self._open_dirs(dirs, create=True)
        try:
            # The pinned directory, by its descriptor: no link can be swapped in meanwhile.
            path = Path(f"/proc/self/fd/{directory}") / (last + FILE_SUFFIX)
            _refuse_link(directory, last + FILE_SUFFIX, key)
            with atomic_write(path, TEMP_PREFIX, TEMP_SUFFIX) as sink:
                yield sink
        finally:
            os.close(directory)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """An exclusive lock for a read-modify-write of ``key``, across processes (``flock``)."""
        *dirs, last = key.split("/")
        directory = self._open_dirs(dirs, create=True)
        try:
            fd = os.open(
                last + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600, dir_fd=directory
            )
        finally:
            os.close(directory)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def open(self, key: str) -> io.BufferedReader:
        """The object's file, open for reading."""
        return os.fdopen(self._open_file(key), "rb")

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        with self.open(key) as source:
            return source.read()

    def delete(self, key: str) -> None:
        """Unlink the object's file (durably); empty directories stay."""
        *dirs, last = key.split("/")
        try:
            directory = self._open_dirs(dirs, create=False)
        except FileNotFoundError:
            raise _missing(key) from None
        try:
            _refuse_link(directory, last + FILE_SUFFIX, key)
            try:
                os.unlink(last + FILE_SUFFIX, dir_fd=directory)
            except FileNotFoundError:
                raise _missing(key) from None
            os.fsync(directory)
        finally:
            os.close(directory)

    def _open_file(self, key: str) -> int:
        *dirs, last = key.split("/")
        try:
            directory = self._open_dirs(dirs, create=False)
        except FileNotFoundError:
            raise _missing(key) from None
        try:
            return os.open(last + FILE_SUFFIX, os.O_RDONLY | _NOFOLLOW, dir_fd=directory)
        except FileNotFoundError:
            raise _missing(key) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _link(key) from None
            raise
        finally:
            os.close(directory)

    def _open_dirs(self, dirs: list[str], create: bool) -> int:
        """A descriptor of the directory of ``dirs`` under the root, following no link."""
        if create and not self._root.is_dir():
            self._make_dirs(self._root)
        current = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in dirs:
                segment = name + DIR_SUFFIX
                try:
                    following = _open_dir_at(current, segment)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(segment, 0o700, dir_fd=current)
                    os.fsync(current)
                    following = _open_dir_at(current, segment)
                os.close(current)
                current = following
        except BaseException:
            os.close(current)
            raise
        return current

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


_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir_at(parent: int, name: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise StoreError(
                f"The object store has a symbolic link or a file where a directory belongs "
                f"({name!r}); it follows no links. Remove it."
            ) from None
        raise


def _refuse_link(directory: int, name: str, key: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode):
            raise _link(key)


def _link(key: str) -> StoreError:
    return StoreError(
        f"Object {key!r} is a symbolic link in the object store, which follows no links. Remove it."
    )


def _missing(key: str) -> NotFoundError:
    return NotFoundError(f"Object {key!r} does not exist.")
