"""Clients that connect to a Unix socket and never call, for the tests of connection limits.

A server with a cap on connections and a deadline for a silent one (the KMS v2 plugin's
gRPC socket, the mesh agent's Workload API socket) must close those over the cap at once
and the rest at the deadline; :func:`silent_connections` opens them and :func:`closed_within`
tells whether the server closed one.
"""

from __future__ import annotations

import socket
from pathlib import Path


def silent_connections(path: Path, count: int, *, half_sent: bytes = b"") -> list[socket.socket]:
    """``count`` connections to the socket at ``path`` that never make a call.

    With ``half_sent``, every other connection (the odd ones) sends those bytes first (half
    a protocol preface, say) and then nothing more. The caller closes the sockets.
    """
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            sock = socket.socket(socket.AF_UNIX)
            socks.append(sock)
            sock.connect(str(path))
            if half_sent and i % 2:
                sock.sendall(half_sent)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the other side closes ``sock`` within ``seconds`` (what it sends is read away)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True
