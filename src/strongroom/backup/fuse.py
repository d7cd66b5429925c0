"""Mounting :class:`~strongroom.backup.mountfs.SnapshotFS` with libfuse (through mfusepy).

`mfusepy`_ (a maintained fork of fusepy) calls libfuse 2 or 3 through ctypes, so it needs
no compiler, only the library (Debian: ``fuse3`` brings ``libfuse3-3`` and
``fusermount3``; ``libfuse2`` works too) and ``/dev/fuse``. :func:`fuse_problem` says in
one line why a mount cannot work here before anything is attempted, so the command fails
with that line rather than a traceback.

.. _mfusepy: https://pypi.org/project/mfusepy/
"""

from __future__ import annotations

import os
import shutil

from strongroom.backup.errors import FuseUnavailableError
from strongroom.backup.mountfs import SnapshotFS
from strongroom.errors import ValidationError

DEVICE = "/dev/fuse"
INSTALL = "install fuse3 (apt-get install fuse3)"


def fuse_problem(device: str = DEVICE) -> str | None:
    """Why FUSE cannot mount on this machine, as one line; ``None`` if it should work."""
    if not os.path.exists(device):
        return (
            f"FUSE is not available: {device} missing; {INSTALL} and load the fuse kernel "
            "module (in a container: pass --device /dev/fuse and CAP_SYS_ADMIN)"
        )
    if not os.access(device, os.R_OK | os.W_OK):
        return f"FUSE is not available: {device} is not readable and writable by this user"
    try:
        import mfusepy  # noqa: F401  # loads libfuse through ctypes
    except ImportError:
        return "FUSE is not available: the Python binding is missing (pip install mfusepy)"
    except (OSError, AttributeError) as exc:  # no libfuse, or one mfusepy cannot use
        return f"FUSE is not available: libfuse missing or unusable ({exc}); {INSTALL}"
    if os.geteuid() != 0 and not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return f"FUSE is not available: fusermount3 missing (needed without root); {INSTALL}"
    return None


def check_mountpoint(mountpoint: str) -> str:
    """The absolute mount point; :class:`ValidationError` unless it is an empty directory."""
    path = os.path.abspath(mountpoint)
    if not os.path.isdir(path):
        raise ValidationError(f"{path}: the mount point must be an existing directory.")
    if os.path.ismount(path) or os.listdir(path):
        raise ValidationError(f"{path}: the mount point must be an empty, unmounted directory.")
    return path


def mount(
    fs: SnapshotFS,
    mountpoint: str,
    *,
    allow_other: bool = False,
    default_permissions: bool = True,
) -> None:
    """Serve ``fs`` at ``mountpoint`` read-only until it is unmounted (or SIGINT/SIGTERM).

    libfuse's own signal handlers unmount cleanly on Ctrl-C and SIGTERM; ``fusermount3
    -u MOUNTPOINT`` (or ``umount`` as root) ends it from outside. Without
    ``default_permissions`` the kernel does not check the snapshot's modes and owners:
    whoever reaches the mount reads every file (restic's ``--no-default-permissions``).
    """
    problem = fuse_problem()
    if problem is not None:
        raise FuseUnavailableError(problem)
    import mfusepy

    options: dict[str, object] = {
        "foreground": True,
        "ro": True,
        "fsname": "strongroom",
        "subtype": "strongroom-backup",
        "use_ino": True,  # the stable inode numbers of SnapshotFS (hard links share one)
    }
    if default_permissions:
        options["default_permissions"] = True  # the kernel checks the snapshot's modes
    if allow_other:
        options["allow_other"] = True
    try:
        mfusepy.FUSE(fs, mountpoint, **options)
    except RuntimeError as exc:  # fuse_main failed: libfuse printed why on stderr
        raise ValidationError(
            f"{mountpoint}: the FUSE mount failed (libfuse status {exc}); see the line above."
        ) from None
