"""Writing a secret to stdout for a reader that may stop reading (a pipe closed early)."""

from __future__ import annotations

import os
import sys


def write_out(data: bytes) -> int:
    """Write ``data`` on stdout; 0, or 1 if the reader went away.

    (``sss`` stops reading from the other pins once it has enough shares.)
    """
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    except BrokenPipeError:
        # the interpreter flushes stdout again at exit: point it at /dev/null first
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return 0
