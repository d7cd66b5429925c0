"""TLS objects whose read, write and pending are OpenSSL's own methods, without a Python frame.

uvloop runs TLS over memory BIOs through the :class:`ssl.SSLObject` that
``SSLContext.wrap_bio`` makes: several ``read``/``pending`` calls and a ``write`` per request,
each through a Python method that only forwards to the C object (``_ssl._SSLObject``) with
the same arguments, and the read that finds no more data raises through that frame as
well. :class:`DirectSSLObject` binds those three names on each object to the C methods, so
uvloop (which looks them up once per connection) calls OpenSSL directly. Everything else
(handshake, certificates, shutdown) is :class:`ssl.SSLObject`'s.
"""

from __future__ import annotations

import ssl
from typing import Any


class DirectSSLObject(ssl.SSLObject):
    """An :class:`ssl.SSLObject` whose ``read``, ``write`` and ``pending`` are the C methods."""

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> DirectSSLObject:
        created: DirectSSLObject = super()._create(*args, **kwargs)  # type: ignore[misc]
        inner = created._sslobj  # type: ignore[attr-defined]
        # the same signatures: read(len[, buffer]), write(data), pending()
        created.read = inner.read  # type: ignore[method-assign]
        created.write = inner.write  # type: ignore[method-assign]
        created.pending = inner.pending  # type: ignore[method-assign]
        return created


def direct(context: ssl.SSLContext) -> ssl.SSLContext:
    """``context``, wrapping memory BIOs in :class:`DirectSSLObject` from now on."""
    context.sslobject_class = DirectSSLObject
    return context
