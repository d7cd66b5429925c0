"""The one line a failed command prints: ``error: <what happened>`` on stderr, exit 1.

Shared by the typer commands (:func:`strongroom.cli.common.cli_errors`) and the fast
starts that run without typer (:mod:`strongroom.cli.data_fast`,
:mod:`strongroom.cli.volume_fast`), so both paths print the same words. Imports nothing
but the error tree: the fast starts load this module.
"""

from __future__ import annotations

import sys

from strongroom.errors import StrongroomError

UNEXPLAINED = {
    "InvalidCiphertextError": "The key service cannot decrypt this (InvalidCiphertextException, "
    "which AWS KMS too sends without detail): it was encrypted under another key, account or "
    "encryption context, altered, or its key (or the end user's key) was destroyed.",
}
"""Messages for errors a key service sent without one (AWS KMS does so on purpose)."""


def error_text(exc: StrongroomError | OSError) -> str:
    """What ``error:`` says about ``exc``: its message, the file it names, or an explanation."""
    if isinstance(exc, StrongroomError):
        return str(exc) or UNEXPLAINED.get(type(exc).__name__, type(exc).__name__)
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def error_line(message: str) -> str:
    """``error: <message>`` on one line (runs of white space become one space)."""
    return f"error: {' '.join(message.split())}\n"


def report(exc: StrongroomError | OSError) -> int:
    """Write the error line of ``exc`` on stderr; the exit status, 1."""
    sys.stderr.write(error_line(error_text(exc)))
    return 1
