"""Keeping OpenSSL's record buffers: the mode bit really changes, TLS still works with it."""

from __future__ import annotations

import os
import socket
import ssl
import threading

import pytest

from strongroom.errors import ValidationError
from strongroom.mesh.proxy.policy import parse_policy
from strongroom.mesh.proxy.tls import ServerContextSwitch, client_context, server_context
from strongroom.mesh.proxy.tls_buffers import keep_record_buffers, releases_record_buffers
from strongroom.testing.mesh_certs import TestTrustDomain, svid_state


@pytest.fixture(scope="module")
def td() -> TestTrustDomain:
    return TestTrustDomain("example.org")


def test_cpython_releases_buffers_and_keep_clears_it() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert releases_record_buffers(ctx) is True  # what CPython sets on every context
    assert keep_record_buffers(ctx) is True
    assert releases_record_buffers(ctx) is False
    assert keep_record_buffers(ctx) is False  # nothing left to clear
    other = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert releases_record_buffers(other) is True  # one context's mode is its own


def test_sidecar_contexts_follow_the_option(td: TestTrustDomain) -> None:
    state = svid_state(td.issue_svid("/a"), td.bundle_pem)
    assert releases_record_buffers(client_context(state)) is False
    assert releases_record_buffers(client_context(state, keep_buffers=False)) is True
    assert releases_record_buffers(server_context(state)) is False
    switch = ServerContextSwitch(state, keep_buffers=False)
    assert releases_record_buffers(switch.front) is True
    switch.rotate(svid_state(td.issue_svid("/a"), td.bundle_pem))
    assert releases_record_buffers(switch.current) is True
    kept = ServerContextSwitch(state)
    kept.rotate(state)
    assert releases_record_buffers(kept.front) is False
    assert releases_record_buffers(kept.current) is False


def test_policy_option_defaults_to_keep() -> None:
    base = (
        "trust_domain: example.org\nsvid: {workload_api: unix:///a.sock}\n"
        "inbound: [{name: a, listen: 127.0.0.1:0, upstream: 127.0.0.1:1}]\n"
    )
    assert parse_policy(base).keep_tls_buffers is True
    assert parse_policy(base + "keep_tls_buffers: false\n").keep_tls_buffers is False
    with pytest.raises(ValidationError, match="keep_tls_buffers: expected true or false"):
        parse_policy(base + "keep_tls_buffers: maybe\n")


def test_mutual_tls_with_kept_buffers_carries_bytes_intact(td: TestTrustDomain) -> None:
    """Many small records and large ones, both ways, over a real loopback connection."""
    server_ctx = server_context(svid_state(td.issue_svid("/b"), td.bundle_pem))
    client_ctx = client_context(svid_state(td.issue_svid("/a"), td.bundle_pem))
    messages = [os.urandom(n) for n in (1, 5, 300, 16_384, 16_385, 100_000, 1 << 20, 7)] * 3
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def echo() -> None:
        try:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                for message in messages:
                    got = bytearray()
                    while len(got) < len(message):
                        got += tls.recv(len(message) - len(got))
                    tls.sendall(bytes(reversed(got)))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=echo)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            client_ctx.wrap_socket(raw) as tls,
        ):
            for message in messages:
                tls.sendall(message)
                back = bytearray()
                while len(back) < len(message):
                    back += tls.recv(len(message) - len(back))
                assert bytes(back) == message[::-1]
    finally:
        thread.join(30)
        listener.close()
    assert not errors, errors
