"""A listener run in the foreground until SIGTERM or Ctrl-C (``strongroom kmip``, ``vault``).

:func:`serve_until_signal` starts it, prints where it listens, waits for SIGTERM or SIGINT,
then stops it and puts the previous signal handlers back, whatever happened.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from strongroom.cli.output import stdout_console


def serve_until_signal(
    start: Callable[[], None], stop: Callable[[], None], banner: Callable[[], str]
) -> None:
    """``start()``, print ``banner()``, wait for SIGTERM/SIGINT, then ``stop()``.

    ``stop`` runs even when ``start`` fails part-way (it must cope with that); the signal
    handlers are restored last.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            start()
            stdout_console().print(banner())
            while not stopping.wait(3600):
                pass
        finally:
            stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
