"""Keeping OpenSSL's record buffers for the life of a connection, as HAProxy and nginx do.

CPython sets ``SSL_MODE_RELEASE_BUFFERS`` on every ``SSLContext``: OpenSSL then frees a
connection's 16 KiB read and write buffers whenever they are empty and allocates them again
for the next record, which saves memory on idle connections. A relay pays for it on every
record: two ~17 KiB ``malloc``/``free`` pairs per request and direction. Measured on the
sidecars (bench/mesh.py's stack, 32 keep-alive connections): after a burst of tens of
thousands of new connections has fragmented the heap, those allocations raised the cost of
a relayed request by 15-25% (user time 6.5 -> 9.8 µs, system time 13.5 -> 15.3 µs per
request and sidecar) until the process restarted; with the buffers kept, the cost stays
where it was on a fresh start. The price is about 34 KiB of memory per open TLS
connection.

Python has no API for the mode, so :func:`keep_record_buffers` calls OpenSSL's
``SSL_CTX_ctrl`` through ``ctypes``, resolved in the very ``_ssl`` module (and so the very
libssl) that Python uses, on the ``SSL_CTX`` pointer that CPython keeps right after the
object header of an ``SSLContext``. It acts only where that layout is known (CPython
3.11-3.14 with the GIL) and checks the mode bit before and after; anywhere else it does
nothing and returns ``False``.
"""

from __future__ import annotations

import ctypes
import functools
import ssl
import sys
import sysconfig
from collections.abc import Callable
from typing import Any

SSL_CTRL_MODE = 33
SSL_CTRL_CLEAR_MODE = 78
SSL_MODE_RELEASE_BUFFERS = 0x10
KNOWN_LAYOUT = ((3, 11), (3, 14))
"""CPython versions whose ``PySSLContext`` starts with ``PyObject_HEAD; SSL_CTX *ctx``."""

CtxCtrl = Callable[[int, int, int, Any], int]


@functools.cache
def _ssl_ctx_ctrl() -> CtxCtrl | None:
    """OpenSSL's ``SSL_CTX_ctrl`` as linked into Python's ``_ssl``, or ``None``."""
    low, high = KNOWN_LAYOUT
    if sys.implementation.name != "cpython" or not low <= sys.version_info[:2] <= high:
        return None
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None  # a free-threaded build has a larger object header
    try:
        import _ssl

        ctrl: Any = ctypes.CDLL(_ssl.__file__).SSL_CTX_ctrl
    except (ImportError, AttributeError, OSError, TypeError):
        return None
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    ctrl.restype = ctypes.c_long
    return ctrl  # type: ignore[no-any-return]


def _ssl_ctx_address(ctx: ssl.SSLContext) -> int | None:
    """The ``SSL_CTX *`` stored right after the object header of ``ctx``."""
    if type(ctx).__basicsize__ < object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p):
        return None
    address: int | None = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    return address


def releases_record_buffers(ctx: ssl.SSLContext) -> bool | None:
    """Whether connections of ``ctx`` free their record buffers (``None``: cannot tell)."""
    ctrl = _ssl_ctx_ctrl()
    address = _ssl_ctx_address(ctx) if ctrl is not None else None
    if ctrl is None or not address:
        return None
    # SSL_CTX_set_mode(ctx, 0): ORs in nothing, returns the mode
    return bool(ctrl(address, SSL_CTRL_MODE, 0, None) & SSL_MODE_RELEASE_BUFFERS)


def keep_record_buffers(ctx: ssl.SSLContext) -> bool:
    """Clear ``SSL_MODE_RELEASE_BUFFERS`` on ``ctx``; whether it was set and is now clear.

    Connections made with ``ctx`` from then on keep their record buffers while open.
    """
    if not releases_record_buffers(ctx):
        return False
    ctrl = _ssl_ctx_ctrl()
    address = _ssl_ctx_address(ctx)
    assert ctrl is not None and address
    ctrl(address, SSL_CTRL_CLEAR_MODE, SSL_MODE_RELEASE_BUFFERS, None)
    return releases_record_buffers(ctx) is False
