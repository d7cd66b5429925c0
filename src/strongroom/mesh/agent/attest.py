"""Workload attestation on a unix socket: who is on the other end, per the kernel.

The agent never trusts what a workload says about itself. It asks the kernel for the
peer credentials of the connected unix socket (``SO_PEERCRED``: the pid, uid and gid of
the process that connected), then reads the binary's path from ``/proc/PID/exe``. Those
become the workload's selectors: ``unix:uid:N``, ``unix:gid:N``, ``unix:user:NAME``,
``unix:group:NAME`` and ``unix:path:/abs/bin`` (the last only when ``/proc`` shows it:
the agent needs the right to read another user's ``/proc/PID/exe``, i.e. root or
``CAP_SYS_PTRACE``).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from strongroom.errors import AccessDeniedError
from strongroom.mesh.identity.registry import Selector

_UCRED = struct.Struct("3i")


class PeerSocket(Protocol):
    """The bits of a socket attestation needs (a ``socket.socket`` or asyncio's wrapper)."""

    @property
    def family(self) -> int:
        """The address family."""
        ...

    def getsockopt(self, level: int, optname: int, buflen: int) -> bytes:
        """Read a socket option."""
        ...

    def fileno(self) -> int:
        """The descriptor."""
        ...


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """The process at the other end of a unix socket, as the kernel reports it."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: PeerSocket) -> PeerCredentials:
    """``SO_PEERCRED`` of a connected unix socket; ``AccessDeniedError`` if unavailable."""
    if sock.family != socket.AF_UNIX:
        raise AccessDeniedError("workloads are attested on a unix socket only")
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError as exc:
        raise AccessDeniedError("the kernel gave no peer credentials for this connection") from exc
    pid, uid, gid = _UCRED.unpack(raw)
    if pid <= 0:
        raise AccessDeniedError("the kernel gave no peer process for this connection")
    return PeerCredentials(pid, uid, gid)


def binary_path(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The absolute path of the process's executable, or ``None`` if it cannot be read."""
    try:
        return os.readlink(proc / str(pid) / "exe")
    except OSError:
        return None


def workload_selectors(creds: PeerCredentials, proc: Path = Path("/proc")) -> frozenset[Selector]:
    """The selectors of the workload with these peer credentials."""
    found = {
        Selector("unix", "uid", str(creds.uid)),
        Selector("unix", "gid", str(creds.gid)),
    }
    with contextlib.suppress(KeyError):  # a uid or gid with no name
        found.add(Selector("unix", "user", pwd.getpwuid(creds.uid).pw_name))
    with contextlib.suppress(KeyError):
        found.add(Selector("unix", "group", grp.getgrgid(creds.gid).gr_name))
    path = binary_path(creds.pid, proc)
    if path is not None and path.startswith("/"):
        found.add(Selector("unix", "path", path))
    return frozenset(found)
