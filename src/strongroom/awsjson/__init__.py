"""AWS JSON 1.1 over SigV4: the client of Strongroom's own operations, and error mapping.

Used by the clients of keys (:mod:`strongroom.data`, :mod:`strongroom.volume`) and by the
mesh (:mod:`strongroom.mesh`); it imports neither. Two layers:

- botocore's: :class:`SignedJsonClient` (the whole AWS chain), :func:`aws_errors`;
- without botocore, for the commands that must start quickly (``encrypt``, ``decrypt``,
  ``volume pass``): :mod:`.sigv4` (the one SigV4 signer) and :mod:`.http11` (a small
  HTTP/1.1 transport).

The public names below are imported on first use, so importing :mod:`.sigv4` or
:mod:`.http11` loads nothing else of this package (not even ``typing``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the fast start paths import this package
if TYPE_CHECKING:
    from strongroom.awsjson.ca_bundle import check_ca_bundle
    from strongroom.awsjson.client import SignedJsonClient, reply_blob, session_credentials
    from strongroom.awsjson.errors import aws_errors, strongroom_error

_HOMES = {
    "SignedJsonClient": "strongroom.awsjson.client",
    "aws_errors": "strongroom.awsjson.errors",
    "check_ca_bundle": "strongroom.awsjson.ca_bundle",
    "reply_blob": "strongroom.awsjson.client",
    "session_credentials": "strongroom.awsjson.client",
    "strongroom_error": "strongroom.awsjson.errors",
}
"""Where each public name lives."""


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'strongroom.awsjson' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "SignedJsonClient",
    "aws_errors",
    "check_ca_bundle",
    "reply_blob",
    "session_credentials",
    "strongroom_error",
]
