"""Child processes that end with the process that started them, however it ends.

A test that starts a long-running command (``strongroom mesh agent``, a sidecar proxy)
stops it in a ``finally``. When the test process itself is killed (a timeout's SIGTERM, a
SIGKILL) no ``finally`` runs and the child lives on, holding its socket and ports. Linux
can signal a child when its parent ends (``prctl(PR_SET_PDEATHSIG)``): the child asks for
it between ``fork`` and ``exec``, and the request survives ``exec``::

    subprocess.Popen(argv, preexec_fn=die_with_parent())

The kernel's "parent" is the *thread* that started the child: start such children from a
thread that lives as long as they should (a test's own thread does).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal this process gets when its parent ends (linux/prctl.h)."""


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when we end.

    SIGKILL by default: the child cannot outlive us by ignoring or handling it. ``None``
    (no ``preexec_fn``) where the platform has no such request (not Linux).
    """
    if not sys.platform.startswith("linux"):
        return None
    # Looked up here, in the parent: the child runs as little Python as it can before exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    number = int(sig)

    def ask_for_the_signal() -> None:
        if prctl(PR_SET_PDEATHSIG, number, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent ended before the request: no one will send it
            os.kill(os.getpid(), number)

    return ask_for_the_signal
