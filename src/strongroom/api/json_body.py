"""JSON 1.1 bodies of the API: requests decoded, responses and errors encoded.

Bodies go through orjson (Rust), a few times faster than the standard library's codec
on the small bodies of the hot operations. Requests may not hold ``NaN`` or ``Infinity``
(orjson refuses them, and numbers too large for a double); timestamps in responses are
epoch seconds, as AWS's JSON protocol sends them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_ENCODE_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # datetimes through _json_default


decode_body: Callable[[bytes], Any] = orjson.loads  # no frame of ours around it
"""The JSON value of a request ``body`` (``ValueError`` if it is not JSON)."""


def encode_body(value: Any) -> bytes:
    """A response body: compact JSON, datetimes as epoch seconds."""
    return orjson.dumps(value, default=_json_default, option=_ENCODE_OPTIONS)


def error_body(aws_type: str, message: str) -> bytes:
    """The body of an error response: ``{"__type": ..., "message": ...}``."""
    return json.dumps({"__type": aws_type, "message": message}).encode("utf-8")
