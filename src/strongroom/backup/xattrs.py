"""Extended attributes of backed-up paths: read by ``create``, written by ``restore``.

Linux only (``os.listxattr``): elsewhere nothing is recorded. A file system without
extended attributes has none to record; on restore, one that cannot hold them is reported
once per run. As ownership is, the ``trusted.`` and ``security.`` namespaces are restored
only by root (they need privileges a user restoring their own files does not have).
"""

from __future__ import annotations

import errno
import os

PRIVILEGED = ("trusted.", "security.")
_UNSUPPORTED = {errno.ENOTSUP, errno.EOPNOTSUPP}


def read_xattrs(path: str) -> tuple[dict[str, bytes], str | None]:
    """``path``'s extended attributes (not following a symlink), and why some were missed."""
    if not hasattr(os, "listxattr"):
        return {}, None
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return {}, None
        return {}, f"{path}: extended attributes: {exc.strerror}"
    found: dict[str, bytes] = {}
    problem = None
    for name in sorted(names):
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.ENODATA:  # ENODATA: removed since it was listed
                problem = f"{path}: extended attribute {name}: {exc.strerror}"
    return found, problem


def write_xattrs(path: str, xattrs: dict[str, bytes], *, symlink: bool) -> list[tuple[str, int]]:
    """Set ``xattrs`` on ``path``; the ones that failed, as ``(name, errno)``."""
    privileged = os.geteuid() == 0
    failed: list[tuple[str, int]] = []
    for name, value in xattrs.items():
        if name.startswith(PRIVILEGED) and not privileged:
            continue
        try:
            os.setxattr(path, name, value, follow_symlinks=not symlink)
        except OSError as exc:
            failed.append((name, exc.errno or errno.EIO))
    return failed


def unsupported(code: int) -> bool:
    """Whether a failure means the file system holds no extended attributes."""
    return code in _UNSUPPORTED
