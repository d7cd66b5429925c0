"""JSON log lines: one object per record, for the processes that log for machines.

Code logs through a named logger with its fields in ``extra={"fields": {...}}``;
:class:`JsonLogFormatter` writes ``time``, ``level``, ``logger``, ``message``, those fields
and (if any) ``exception``. :func:`configure_json_logging` sends one logger's records to a
stream in that form. The KMS plugin (:mod:`strongroom.k8s.logs`) logs this way; the caller
chooses the fields, and they never hold plaintexts or key material.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import IO, Any


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


def configure_json_logging(
    logger_name: str, level: str = "info", stream: IO[str] | None = None
) -> logging.Handler:
    """Send the records of ``logger_name`` (and its children) as JSON lines to ``stream``.

    ``stream`` defaults to stderr. The logger gets ``level`` and stops propagating to the
    root logger. Returns the handler so the caller can remove it again.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler


CHATTY_LIBRARIES = ("grpclib", "botocore", "boto3", "urllib3", "h2", "hpack")
"""Libraries whose INFO lines are noise to an operator: grpclib logs every client that
hangs up ("Request was cancelled: Stream reset by remote party"), botocore where it found
credentials ("Found credentials in environment variables.")."""


def quiet_libraries(level: str) -> None:
    """Show :data:`CHATTY_LIBRARIES` only from WARNING up (everything at ``debug`` level)."""
    if level.lower() == "debug":
        return
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
