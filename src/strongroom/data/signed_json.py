"""The SigV4 JSON client, re-exported from :mod:`strongroom.awsjson` (its home).

Kept so that code written against ``strongroom.data.signed_json`` goes on working.
"""

from strongroom.awsjson.client import (
    DEFAULT_TIMEOUT,
    JSON_11,
    SIGNING_NAME,
    SignedJsonClient,
    reply_blob,
    session_credentials,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "JSON_11",
    "SIGNING_NAME",
    "SignedJsonClient",
    "reply_blob",
    "session_credentials",
]
