"""Structured logs of the KMS plugin: one JSON object per line.

Code logs through ``logging.getLogger("strongroom.k8s")`` with its fields in
``extra={"fields": {...}}``; :class:`~strongroom.logs.JsonLogFormatter` writes ``time``,
``level``, ``logger``, ``message`` and those fields. Fields never hold plaintexts, seeds or
key material: only methods, request uids, key ids, error types and timings.
"""

from __future__ import annotations

import logging
from typing import IO

from strongroom.logs import configure_json_logging

LOGGER_NAME = "strongroom.k8s"


def configure_logging(level: str = "info", stream: IO[str] | None = None) -> logging.Handler:
    """Send the plugin's logs (``strongroom.k8s``) as JSON lines to ``stream`` (stderr).

    Returns the handler so the caller can remove it again.
    """
    return configure_json_logging(LOGGER_NAME, level, stream)
