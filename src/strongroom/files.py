"""Durable file writes: fsync a directory, replace a file atomically.

A file written through :func:`atomic_write` appears only complete: data goes to a
temporary file beside it, which is flushed and fsynced, renamed over the target, and the
directory fsynced (so the rename survives a crash). On any failure the temporary file is
removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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


@contextlib.contextmanager
def atomic_write(path: Path, prefix: str, suffix: str = ".part") -> Iterator[BinaryIO]:
    """A temporary file beside ``path``, renamed over ``path`` when the block ends cleanly.

    The temporary file is named ``prefix`` + random + ``suffix`` (mode 0600, as
    :func:`tempfile.mkstemp` makes it); see the module docstring for what is fsynced.
    """
    fd, temp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    done = False
    try:
        with os.fdopen(fd, "wb") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, path)
        done = True
    finally:
        if not done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    fsync_dir(path.parent)
