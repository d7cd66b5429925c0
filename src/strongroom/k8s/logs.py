"""Structured logs of the KMS plugin: one JSON object per line.

Code logs through ``logging.getLogger("strongroom.k8s")`` with its fields in
``extra={"fields": {...}}``; :class:`JsonLogFormatter` writes ``time``, ``level``,
``logger``, ``message`` and those fields. Fields never hold plaintexts, seeds or key
material: only methods, request uids, key ids, error types and timings.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import IO, Any

LOGGER_NAME = "strongroom.k8s"


class JsonLogFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """``{"time", "level", "logger", "message", **fields}`` (and ``exception``)."""
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


def configure_logging(level: str = "info", stream: IO[str] | None = None) -> logging.Handler:
    """Send the plugin's logs (``strongroom.k8s``) as JSON lines to ``stream`` (stderr).

    Returns the handler so the caller can remove it again.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler
