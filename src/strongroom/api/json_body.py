"""JSON 1.1 bodies of the API: requests decoded, responses and errors encoded.

One decoder and one encoder serve every request (``json.loads``/``dumps`` with options
build new ones per call). Requests may not hold ``NaN`` or ``Infinity``; timestamps in
responses are epoch seconds, as AWS's JSON protocol sends them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_json_default)


def decode_body(body: bytes) -> Any:
    """The JSON value of a request ``body`` (``ValueError`` if it is not JSON)."""
    return _DECODER.decode(body.decode("utf-8"))


def encode_body(value: Any) -> bytes:
    """A response body: compact JSON, datetimes as epoch seconds."""
    return _ENCODER.encode(value).encode("utf-8")


def error_body(aws_type: str, message: str) -> bytes:
    """The body of an error response: ``{"__type": ..., "message": ...}``."""
    return json.dumps({"__type": aws_type, "message": message}).encode("utf-8")
