"""Binding a unix-socket connection to the process that made it, for ``unix:path``.

``SO_PEERCRED`` names the process that *connected*, fixed at ``connect()``; reading
``/proc/PID/exe`` on every call would attest whatever that process runs *now*. The
exec-and-relay attack uses the gap: a process connects, forks, the parent execs a
privileged binary (same pid, new ``exe``) and the child relays its own requests over the
inherited socket. So the agent:

1. on a connection's first request, records the peer's identity (``/proc/PID/exe``'s
   device and inode, its path and the process's start time, which pid reuse changes), and
   checks that the peer's end of the socket is held by that process alone (the peer socket
   found with ``sock_diag``'s ``UNIX_DIAG_PEER``, its holders by scanning ``/proc/*/fd``):
   a relay that shares the socket is refused;
2. on every later request on the connection, refuses it unless the peer process still has
   the identity recorded (an exec, or a new process on a reused pid, ends the connection).

Where the agent cannot read every process's descriptors (not root), the sharing check is
not conclusive; then the ``unix:path`` selector is withheld (uid and gid, fixed by the kernel
at connect, still stand).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from strongroom.errors import AccessDeniedError

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_UDIAG_SHOW_PEER = 0x04
_UNIX_DIAG_PEER = 2
_NO_COOKIE = 0xFFFFFFFF
_NLMSGHDR = struct.Struct("=IHHII")
_UNIX_DIAG_REQ = struct.Struct("=BBHIIIII")
_UNIX_DIAG_MSG = struct.Struct("=BBBBIII")
_RTATTR = struct.Struct("=HH")


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """What an exec or a reused pid changes: the binary (device, inode, path), the start."""

    device: int
    inode: int
    path: str
    start_time: str


def process_identity(pid: int, proc: Path = Path("/proc")) -> ProcessIdentity | None:
    """The identity of process ``pid`` now, or ``None`` if it cannot be read (gone, denied)."""
    base = proc / str(pid)
    try:
        binary = os.stat(base / "exe")
        path = os.readlink(base / "exe")
        stat = (base / "stat").read_text("ascii", "replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    start = fields[19] if len(fields) > 19 else ""  # field 22 of stat: starttime
    return ProcessIdentity(binary.st_dev, binary.st_ino, path, start)


class HasFileno(Protocol):
    """A socket, or asyncio's wrapper of one."""

    def fileno(self) -> int:
        """The descriptor."""
        ...


def socket_inode(sock: HasFileno) -> int:
    """The inode of our end of a socket."""
    return os.fstat(sock.fileno()).st_ino


def peer_inode(our_inode: int) -> int | None:
    """The inode of the other end of our unix socket ``our_inode`` (``sock_diag``)."""
    request = _UNIX_DIAG_REQ.pack(
        socket.AF_UNIX, 0, 0, 0xFFFFFFFF, our_inode, _UDIAG_SHOW_PEER, _NO_COOKIE, _NO_COOKIE
    )
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0
    )
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(2.0)
            nl.send(header + request)
            reply = nl.recv(65536)
    except OSError:
        return None
    return _parse_peer(reply)


def _parse_peer(reply: bytes) -> int | None:
    if len(reply) < _NLMSGHDR.size + _UNIX_DIAG_MSG.size:
        return None
    length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(reply)
    if kind == _NLMSG_ERROR or length > len(reply):
        return None
    offset = _NLMSGHDR.size + _UNIX_DIAG_MSG.size
    while offset + _RTATTR.size <= length:
        size, attr = _RTATTR.unpack_from(reply, offset)
        if size < _RTATTR.size:
            return None
        if attr == _UNIX_DIAG_PEER and size >= _RTATTR.size + 4:
            (peer,) = struct.unpack_from("=I", reply, offset + _RTATTR.size)
            return int(peer)
        offset += (size + 3) & ~3
    return None


def holders(inode: int, proc: Path = Path("/proc")) -> tuple[set[int], bool]:
    """The processes with socket ``inode`` open, and whether every process could be read."""
    target = f"socket:[{inode}]"
    found: set[int] = set()
    conclusive = True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            names = os.listdir(entry / "fd")
        except PermissionError:
            conclusive = False
            continue
        except OSError:
            continue  # gone meanwhile
        for name in names:
            try:
                if os.readlink(entry / "fd" / name) == target:
                    found.add(int(entry.name))
                    break
            except OSError:
                continue
    return found, conclusive


@dataclass(frozen=True, slots=True)
class BoundPeer:
    """A connection's peer as attested on its first request."""

    pid: int
    identity: ProcessIdentity | None
    path_trusted: bool
    """Whether ``unix:path`` may be granted: the peer alone holds its end of the socket."""

    def check_unchanged(self, proc: Path = Path("/proc")) -> None:
        """Refuse the request if the peer process execed, exited or its pid was reused."""
        if self.identity is None:
            return  # nothing was attested by path; uid/gid are the kernel's, fixed at connect
        if process_identity(self.pid, proc) != self.identity:
            raise AccessDeniedError(
                "the process that opened this connection has changed its executable or "
                "exited: reconnect"
            )


def bind_peer(sock: HasFileno, pid: int, proc: Path = Path("/proc")) -> BoundPeer:
    """Attest the peer ``pid`` of ``sock`` once; refuse a socket shared with another process."""
    identity = process_identity(pid, proc)
    peer = peer_inode(socket_inode(sock))
    if peer is None:
        return BoundPeer(pid, identity, path_trusted=False)
    owners, conclusive = holders(peer, proc)
    if owners - {pid}:
        raise AccessDeniedError(
            "this connection's socket is shared with another process: each workload "
            "connects on its own"
        )
    trusted = conclusive and identity is not None and process_identity(pid, proc) == identity
    return BoundPeer(pid, identity, path_trusted=trusted)
