"""Durable file writes: fsync a directory, replace a file atomically.

A file written through :func:`atomic_write` appears only complete: data goes to a
temporary file beside it, which is flushed and fsynced, renamed over the target, and the
directory fsynced (so the rename survives a crash). On any failure the temporary file is
removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unnamed_file(directory: Path) -> int | None:
    """An unnamed file in ``directory`` (``O_TMPFILE``, mode 0600), or ``None``.

    ``None`` where the kernel or the file system has no ``O_TMPFILE``.
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):  # naming it later needs /proc
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None  # no O_TMPFILE here (ENOENT: the directory really is missing)
        raise


def _name_unnamed(fd: int, name: Path) -> None:
    """Link the unnamed file ``fd`` as ``name``: ``linkat`` following ``/proc/self/fd``."""
    directory = os.open(name.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # A dir_fd makes CPython call linkat(AT_SYMLINK_FOLLOW); plain link() would try
        # to link the /proc symlink itself (EXDEV).
        os.link(f"/proc/self/fd/{fd}", name.name, dst_dir_fd=directory, follow_symlinks=True)
    finally:
        os.close(directory)


@contextlib.contextmanager
def atomic_write(path: Path, prefix: str, suffix: str = ".part") -> Iterator[BinaryIO]:
    """A temporary file beside ``path``, renamed over ``path`` when the block ends cleanly.

    Where the kernel offers it (Linux ``O_TMPFILE``), the data goes to an *unnamed* file
    that gets a name (``prefix`` + random + ``suffix``, then ``path``) only once it is
    complete and fsynced: a process killed halfway leaves nothing behind, not even a
    partial file of verified plaintext. Elsewhere it is a named temporary file (mode 0600,
    as :func:`tempfile.mkstemp` makes it), removed on failure. See the module docstring for
    what is fsynced.
    """
    fd = _unnamed_file(path.parent)
    if fd is not None:
        temp, linked = str(path.parent / f"{prefix}{secrets.token_hex(8)}{suffix}"), False
    else:
        import tempfile  # only here: it imports shutil and the compressors (`encrypt`'s start)

        fd, temp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        linked = True
    done = False
    try:
        with os.fdopen(fd, "wb") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
            if not linked:  # name the complete file; from here a crash leaves it whole
                _name_unnamed(sink.fileno(), Path(temp))
                linked = True
        os.replace(temp, path)
        done = True
    finally:
        if not done and linked:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    fsync_dir(path.parent)
