"""TLS for the sidecar: contexts built from an SVID, rotation, resumption, handshake failures.

Python's ``ssl`` module cannot run a custom verification callback, so a peer is checked in
two steps:

1. **During the handshake, by OpenSSL**: the peer must present a chain that leads to one
   of the trust bundle's anchors (and only those: no system store is loaded), every
   certificate inside its validity period, the right extended key usage (``clientAuth``
   for callers, ``serverAuth`` for servers). Hostname checking is off: SPIFFE identities
   are not host names. A failure aborts the handshake.
2. **Right after the handshake, by** :class:`~strongroom.mesh.proxy.peer_check.PeerVerifier`
   **with** ``cryptography``: the
   leaf has exactly one URI SAN and it is a valid SPIFFE ID of the configured trust domain;
   it is not a CA; it is valid now; its ID is the expected peer (outbound) or on the
   listener's allow-list (inbound, deny by default); the revocation hook does not list it.
   A failure closes the connection before a single byte is relayed.

A resumed TLS 1.3 session skips step 1 (the peer proved its key when the session was made);
step 2 runs on every connection, resumed or not, so expiry, allow-lists and revocation still
apply. A peer whose CA left the trust bundle stays resumable until the session ticket ends
(OpenSSL's default lifetime, 2 hours); set ``session_resumption: false`` to refuse that.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import time
from collections.abc import Callable
from typing import Any

from strongroom.mesh.proxy.svid_source import SvidState
from strongroom.mesh.proxy.tls_buffers import keep_record_buffers

SESSION_REFRESH = 10.0
"""Seconds a client keeps resuming one session before it takes a fresher one.

The peer keeps every session it issued in a cache of OpenSSL's default 20,480 entries, one
more per connection (each handshake, resumed or not, issues a ticket), and evicts the
oldest when the cache is full: a session offered for longer than the cache lasts would be
dropped under the client. At 10 seconds that takes over 2,000 new connections a second.
"""
SSL_OP_NO_ANTI_REPLAY = 0x01000000
"""OpenSSL's option (not exported by ``ssl``): stateful TLS 1.3 tickets stay reusable.

Anti-replay only matters for 0-RTT early data, which the sidecars never accept."""


class FastContext(ssl.SSLContext):
    """A context whose TLS objects skip the ``ssl.SSLObject`` Python wrappers on the hot path.

    asyncio's TLS layer calls ``read``, ``write`` and ``pending`` of the ``SSLObject`` for
    every record; ``ssl.SSLObject`` implements them as Python methods that only forward to
    the C object. Binding the C methods on the instance saves a Python call per record.
    """

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        """Like ``SSLContext.wrap_bio``, with the C ``read``/``write``/``pending`` bound."""
        tls = super().wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )
        inner = tls._sslobj  # type: ignore[attr-defined]
        tls.read = inner.read  # type: ignore[method-assign]
        tls.write = inner.write  # type: ignore[method-assign]
        tls.pending = inner.pending  # type: ignore[method-assign]
        return tls


class ResumingClientContext(FastContext):
    """A client context that resumes a TLS 1.3 session on new connections to its peer.

    asyncio creates TLS objects through ``SSLContext.wrap_bio`` and has no ``session``
    parameter of its own; this subclass passes :attr:`session` there (and notes on the TLS
    object which session it offered). Reading a session out of a connection costs a full
    copy of it (CPython serialises and parses it again, peer certificate included), so a
    session is taken (:meth:`remember`) only when there is none, when it is
    :data:`SESSION_REFRESH` seconds old (from a resumed connection too: each one brings a
    new ticket), or after the peer declined the one offered (:meth:`forget`); our
    sidecars' tickets are reusable. A session only resumes with the context that made it,
    so a rotation (a new context) starts afresh.
    """

    session: ssl.SSLSession | None = None
    session_taken = float("-inf")

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        """Like ``SSLContext.wrap_bio``, offering :attr:`session` by default."""
        offered = session if session is not None else self.session
        tls = super().wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=offered,
        )
        tls.offered_session = offered  # type: ignore[attr-defined]
        return tls

    def wants_session(self) -> bool:
        """Whether :meth:`remember` would take a session now."""
        return self.session is None or time.monotonic() - self.session_taken > SESSION_REFRESH

    def remember(self, ssl_object: Any) -> bool:
        """Take ``ssl_object``'s session if it carries a new ticket; whether it did.

        TLS 1.3 tickets arrive after the handshake: call this once data has come in. A
        resumed connection holds the session it resumed until its new ticket arrives.
        """
        session = ssl_object.session
        if session is None or not session.has_ticket:
            return False
        held = self.session
        if held is not None and session.id == held.id:
            return False  # no new ticket yet: this is the session we hold
        self.session, self.session_taken = session, time.monotonic()
        return True

    def forget(self, ssl_object: Any) -> None:
        """The peer did not resume what ``ssl_object`` offered: drop that session if held.

        Connections that offered an older session finish after a newer one was taken;
        their failure says nothing about the newer one.
        """
        offered = getattr(ssl_object, "offered_session", None)
        if offered is not None and offered is self.session:
            self.session = None


def _load_chain(ctx: ssl.SSLContext, state: SvidState) -> None:
    """Load the SVID chain and key without writing the key to a disk file.

    ``load_cert_chain`` reads only paths; a memfd (Linux) keeps the key in memory. Elsewhere
    a private temporary file is used and removed at once.
    """
    data = state.svid.chain_pem() + state.svid.key_pem()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("svid", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    fd, name = tempfile.mkstemp(prefix="svid-")
    try:
        os.write(fd, data)
        os.close(fd)
        ctx.load_cert_chain(name)
    finally:
        os.unlink(name)


def _common(ctx: ssl.SSLContext, state: SvidState, keep_buffers: bool) -> None:
    if keep_buffers:
        keep_record_buffers(ctx)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=state.bundle_pem())
    _load_chain(ctx, state)


def client_context(state: SvidState, *, keep_buffers: bool = True) -> ResumingClientContext:
    """The context of an outbound mTLS connection: our SVID, the bundle, no hostname check.

    ``keep_buffers``: connections keep OpenSSL's record buffers while open
    (:mod:`.tls_buffers`).
    """
    ctx = ResumingClientContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    _common(ctx, state, keep_buffers)
    return ctx


def server_context(state: SvidState, *, keep_buffers: bool = True) -> ssl.SSLContext:
    """The context of an inbound mTLS connection: a client certificate is required."""
    ctx = FastContext(ssl.PROTOCOL_TLS_SERVER)
    _common(ctx, state, keep_buffers)
    return ctx


class ServerContextSwitch:
    """One listening context whose certificate and bundle can be replaced in place.

    asyncio fixes a server's ``SSLContext`` when it starts listening. The listening context
    (:attr:`front`) has a servername callback, which OpenSSL runs for every ClientHello,
    with or without SNI; it switches the connection to the context of the current SVID
    (certificate, key and the trust store used to verify the caller). The session cache
    stays with the front context, so callers keep resuming across rotations. Tickets are
    stateful (``OP_NO_TICKET``: a ticket names a session kept in this process's cache),
    which saves decoding a whole session, peer certificate included, per resumption.
    """

    def __init__(
        self, state: SvidState, *, resumption: bool = True, keep_buffers: bool = True
    ) -> None:
        # OpenSSL copies the mode into each connection from the listening (front) context
        self._keep_buffers = keep_buffers
        self.front = server_context(state, keep_buffers=keep_buffers)
        # TLS 1.3 tickets that name a session in this process's cache (no session to decode
        # per resumption), reusable (no 0-RTT here, so no replay to guard against), one per
        # connection.
        self.front.options |= ssl.OP_NO_TICKET | SSL_OP_NO_ANTI_REPLAY
        self.front.num_tickets = 1 if resumption else 0
        self.current = self.front
        self.front.sni_callback = self._select

    def _select(self, ssl_object: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
        current = self.current
        if current is not ctx:
            ssl_object.context = current

    def rotate(self, state: SvidState) -> None:
        """Use ``state`` for every handshake from now on."""
        self.current = server_context(state, keep_buffers=self._keep_buffers)


def watch_handshakes(ctx: ssl.SSLContext, on_failure: Callable[[ssl.SSLError], None]) -> None:
    """Call ``on_failure(error)`` whenever a handshake made with ``ctx`` fails.

    asyncio drops server-side handshake errors silently; this hooks the TLS object class
    the context creates (``SSLContext.sslobject_class``) to see them, so refusals of
    plaintext, expired, unknown-CA or certificate-less callers are logged and counted.
    """

    class _Watched(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise
            except ssl.SSLError as exc:
                on_failure(exc)
                raise

    ctx.sslobject_class = _Watched


def handshake_reason(exc: ssl.SSLError) -> str:
    """A short reason for a failed handshake (``certificate has expired``, ``http request``)."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    return str(exc.reason or exc).lower().replace("_", " ")
