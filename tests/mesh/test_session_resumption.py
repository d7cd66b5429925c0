"""Which TLS 1.3 session the outbound side offers, over real handshakes on memory BIOs.

The sidecar B keeps the sessions it issued in OpenSSL's session cache (stateful tickets) and
evicts the oldest when it is full; these tests shrink that cache (``SSL_CTX`` control
through ``ctypes``, as :mod:`strongroom.mesh.proxy.tls_buffers` reaches it) to see that the
client keeps offering young sessions, and that a late failure of a connection that
offered an old session does not throw away the new one.
"""

from __future__ import annotations

import contextlib
import ssl

import pytest

from strongroom.mesh.proxy import tls as proxy_tls
from strongroom.mesh.proxy.tls import ResumingClientContext, ServerContextSwitch, client_context
from strongroom.mesh.proxy.tls_buffers import _ssl_ctx_address, _ssl_ctx_ctrl
from strongroom.testing.mesh_certs import TestTrustDomain, svid_state

SSL_CTRL_SET_SESS_CACHE_SIZE = 42


@pytest.fixture(scope="module")
def td() -> TestTrustDomain:
    return TestTrustDomain("example.org")


def _pump(a: ssl.MemoryBIO, b: ssl.MemoryBIO) -> None:
    data = a.read()
    if data:
        b.write(data)


def connect(client: ResumingClientContext, server: ssl.SSLContext) -> ssl.SSLObject:
    """One handshake and one exchange of data (so the client reads its new ticket)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls = client.wrap_bio(c_in, c_out)
    peer = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(20):
        for side in (tls, peer):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        _pump(c_out, s_in)
        _pump(s_out, c_in)
    peer.write(b"hello")
    _pump(s_out, c_in)
    assert tls.read(5) == b"hello"
    # a clean close: OpenSSL drops a session from the cache when its connection ends without
    # one (the sidecars close cleanly)
    with contextlib.suppress(ssl.SSLWantReadError):
        peer.unwrap()
    return tls


@pytest.fixture
def pair(td: TestTrustDomain) -> tuple[ResumingClientContext, ssl.SSLContext]:
    server = ServerContextSwitch(svid_state(td.issue_svid("/b"), td.bundle_pem)).front
    client = client_context(svid_state(td.issue_svid("/a"), td.bundle_pem))
    return client, server


def _run(client: ResumingClientContext, server: ssl.SSLContext, connections: int) -> int:
    """Connections as the pool makes them; how many resumed."""
    resumed = 0
    for _ in range(connections):
        tls = connect(client, server)
        if tls.session_reused:
            resumed += 1
        else:
            client.forget(tls)
        if client.wants_session():
            client.remember(tls)
    return resumed


def test_a_resumed_connection_brings_a_fresher_session(
    pair: tuple[ResumingClientContext, ssl.SSLContext],
) -> None:
    client, server = pair
    first = connect(client, server)
    assert not first.session_reused and client.remember(first)
    held = client.session
    second = connect(client, server)
    assert second.session_reused
    assert not client.wants_session()  # taken just now: no copy of a session per connection
    client.session_taken = float("-inf")  # due for a refresh
    third = connect(client, server)
    assert third.session_reused
    assert client.remember(third)
    assert client.session is not None and held is not None
    assert client.session.id != held.id
    assert connect(client, server).session_reused  # the fresher one resumes too


def test_a_late_failure_of_an_old_offer_keeps_the_new_session(
    pair: tuple[ResumingClientContext, ssl.SSLContext],
) -> None:
    client, server = pair
    assert client.remember(connect(client, server))
    old_offer = connect(client, server)  # offered the session held now
    client.session_taken = float("-inf")
    assert client.remember(connect(client, server))
    newer = client.session
    client.forget(old_offer)  # its failure would be news about the old session only
    assert client.session is newer
    current_offer = connect(client, server)
    client.forget(current_offer)
    assert client.session is None


def test_young_sessions_outlive_a_small_server_cache(
    pair: tuple[ResumingClientContext, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = pair
    ctrl, address = _ssl_ctx_ctrl(), _ssl_ctx_address(server)
    if ctrl is None or not address:
        pytest.skip("the SSL_CTX of this Python cannot be reached")
    ctrl(address, SSL_CTRL_SET_SESS_CACHE_SIZE, 8, None)
    # a session held for ever is evicted once 8 newer ones were issued: resumption fails
    # every few connections
    monkeypatch.setattr(proxy_tls, "SESSION_REFRESH", 1e9)
    stale = _run(client, server, 40)
    assert stale <= 36  # about one failure per 9 connections
    # refreshed on every connection, the offered session is always among the newest
    monkeypatch.setattr(proxy_tls, "SESSION_REFRESH", -1.0)
    client.forget(connect(client, server))
    assert _run(client, server, 40) == 39  # all but the first, which had no session to offer
