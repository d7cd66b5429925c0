"""The mTLS sidecar in-process: client -> sidecar A (outbound) -> sidecar B (inbound) -> HTTP.

Both sidecars and the HTTP server run on one uvloop loop in a thread, on loopback ports;
the client is a plain blocking socket in the test's thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from strongroom.errors import ValidationError
from strongroom.mesh.proxy.peer_check import NoRevocation, RevocationCheck, RevocationFile
from strongroom.mesh.proxy.policy import InboundListener, OutboundListener, ProxyPolicy, SvidConfig
from strongroom.mesh.proxy.sidecar import SidecarProxy
from strongroom.mesh.proxy.svid_source import FileSvidSource, StaticSvidSource
from strongroom.mesh.proxy.yaml_config import Address
from strongroom.testing.mesh_certs import IssuedCert, TestTrustDomain, svid_state
from strongroom.testing.mesh_proxy import BODY, HttpResponder, LoopThread, http_get

TD = "example.org"
A_ID, B_ID = f"spiffe://{TD}/a", f"spiffe://{TD}/b"
LOCAL = "127.0.0.1"


class Records(logging.Handler):
    """Collects the proxy's log records."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def reasons(self, message: str) -> list[str]:
        return [
            str(r.fields.get("reason"))  # type: ignore[attr-defined]
            for r in list(self.records)
            if r.getMessage() == message
        ]


@pytest.fixture
def logs() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("strongroom.mesh")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture(scope="module")
def td() -> TestTrustDomain:
    return TestTrustDomain(TD)


@dataclass
class Pair:
    loop: LoopThread
    responder: HttpResponder
    a: SidecarProxy
    b: SidecarProxy
    a_source: StaticSvidSource
    b_source: StaticSvidSource
    a_port: int
    b_port: int


def inbound(upstream: int, allow: list[str], port: int = 0) -> ProxyPolicy:
    listener = InboundListener(
        "api", Address(LOCAL, port), Address(LOCAL, upstream), frozenset(allow)
    )
    return ProxyPolicy(TD, SvidConfig(), inbound=(listener,))


def outbound(peer: int, peer_id: str, pool_size: int = 2) -> ProxyPolicy:
    listener = OutboundListener(
        "b", Address(LOCAL, 0), Address(LOCAL, peer), peer_id, pool_size=pool_size
    )
    return ProxyPolicy(TD, SvidConfig(), outbound=(listener,))


@pytest.fixture
def make_pair(td: TestTrustDomain) -> Iterator[Callable[..., Pair]]:
    made: list[Pair] = []
    pending: list[SidecarProxy] = []
    responders: list[HttpResponder] = []
    loop = LoopThread()

    def make(
        a_cert: IssuedCert | None = None,
        b_cert: IssuedCert | None = None,
        *,
        a_bundle: bytes | None = None,
        allow: tuple[str, ...] = (A_ID,),
        peer_id: str = B_ID,
        revocation: RevocationCheck | None = None,
        pool_size: int = 2,
    ) -> Pair:
        responder = HttpResponder()
        responders.append(responder)
        up = loop.call(responder.start())
        b_source = StaticSvidSource(svid_state(b_cert or td.issue_svid("/b"), td.bundle_pem))
        b = SidecarProxy(inbound(up, list(allow)), b_source, revocation or NoRevocation())
        pending.append(b)
        loop.call(b.start())
        a_source = StaticSvidSource(
            svid_state(a_cert or td.issue_svid("/a"), a_bundle or td.bundle_pem)
        )
        a = SidecarProxy(
            outbound(b.addresses["api"].port, peer_id, pool_size), a_source, NoRevocation()
        )
        pending.append(a)
        loop.call(a.start())
        pair = Pair(
            loop,
            responder,
            a,
            b,
            a_source,
            b_source,
            a.addresses["b"].port,
            b.addresses["api"].port,
        )
        made.append(pair)
        return pair

    yield make
    for proxy in pending:
        loop.call(proxy.close())
    for responder in responders:
        loop.call(responder.close())
    loop.close()


def test_request_through_two_sidecars(make_pair: Callable[..., Pair]) -> None:
    pair = make_pair()
    assert http_get(pair.a_port) == (200, BODY)
    with socket.create_connection((LOCAL, pair.a_port), timeout=10) as sock:  # keep-alive
        for _ in range(20):
            assert http_get(0, sock) == (200, BODY)
    for _ in range(10):
        assert http_get(pair.a_port) == (200, BODY)
    assert pair.b.stats.accepted >= 12
    assert pair.b.stats.denied == 0
    assert pair.responder.requests == 31


def _pool_full(pair: Pair, size: int) -> None:
    async def full() -> None:
        while pair.a.pool_ready("b") < size:
            await asyncio.sleep(0.005)

    pair.loop.call(asyncio.wait_for(full(), 20))


def test_pool_and_session_resumption(make_pair: Callable[..., Pair]) -> None:
    pair = make_pair(pool_size=2)
    for _ in range(12):
        _pool_full(pair, 2)
        assert http_get(pair.a_port) == (200, BODY)
    stats = pair.a.stats
    assert stats.pool_hits == 12, stats  # every client found a ready connection
    assert stats.pool_misses == 0, stats
    assert stats.peer_handshakes == 14, stats  # 2 to fill the pool, 12 to refill it
    assert stats.peer_resumed >= 11, stats  # all but those made before the first ticket


def test_caller_not_on_the_allow_list_is_refused(
    make_pair: Callable[..., Pair], td: TestTrustDomain, logs: Records
) -> None:
    pair = make_pair(a_cert=td.issue_svid("/intruder"))
    assert http_get(pair.a_port) == (0, b"")
    assert pair.b.stats.denied >= 1
    assert pair.b.stats.accepted == 0
    assert "peer SPIFFE ID is not allowed here" in logs.reasons("inbound caller refused")
    assert pair.responder.connections == 0


def test_empty_allow_list_denies_everyone(make_pair: Callable[..., Pair]) -> None:
    pair = make_pair(allow=())
    assert http_get(pair.a_port) == (0, b"")
    assert pair.b.stats.accepted == 0
    assert pair.responder.connections == 0


def test_expired_caller_certificate_is_refused(
    make_pair: Callable[..., Pair], td: TestTrustDomain, logs: Records
) -> None:
    pair = make_pair(a_cert=td.issue_expired_svid("/a"))
    assert http_get(pair.a_port) == (0, b"")
    assert pair.b.stats.accepted == 0
    assert pair.b.stats.handshake_failures >= 1
    assert any("expired" in r for r in logs.reasons("inbound handshake refused"))
    assert pair.responder.connections == 0


def test_expired_server_certificate_is_refused(
    make_pair: Callable[..., Pair], td: TestTrustDomain, logs: Records
) -> None:
    pair = make_pair(b_cert=td.issue_expired_svid("/b"))
    assert http_get(pair.a_port) == (0, b"")
    assert pair.a.stats.peer_refused >= 1
    assert pair.a.stats.peer_handshakes == 0
    assert pair.responder.requests == 0  # A's own ready connections may be upstream


def test_revoked_caller_is_refused(
    make_pair: Callable[..., Pair], tmp_path: Path, logs: Records
) -> None:
    revoked = tmp_path / "revoked.txt"
    revocation = RevocationFile(revoked, interval=0.0)
    pair = make_pair(revocation=revocation)
    assert http_get(pair.a_port) == (200, BODY)
    revoked.write_text(f"# revoked by the operator\n{A_ID}\n")
    assert http_get(pair.a_port) == (0, b"")
    assert "peer SPIFFE ID is revoked" in logs.reasons("inbound caller refused")
    revoked.write_text("")  # lifted: new connections pass again
    assert http_get(pair.a_port) == (200, BODY)


def _raw_mtls(port: int, cert: IssuedCert, tmp_path: Path) -> bytes:
    """Connect with ``cert`` (not checking the server) and send a request; the answer."""
    (tmp_path / "raw.pem").write_bytes(cert.chain_pem + cert.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(tmp_path / "raw.pem")
    try:
        with (
            socket.create_connection((LOCAL, port), timeout=10) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
            return tls.recv(4096)
    except (ssl.SSLError, ConnectionError):
        return b""


def test_foreign_trust_domain_certificate_is_refused(
    make_pair: Callable[..., Pair], tmp_path: Path, logs: Records
) -> None:
    pair = make_pair()
    foreign = TestTrustDomain("other.org")
    assert _raw_mtls(pair.b_port, foreign.issue_svid("/a"), tmp_path) == b""
    assert pair.b.stats.handshake_failures >= 1
    assert any("unable to get local issuer" in r for r in logs.reasons("inbound handshake refused"))
    assert pair.responder.requests == 0  # A's own ready connections may be upstream


def test_foreign_trust_domain_svid_is_refused_as_own_identity(td: TestTrustDomain) -> None:
    foreign = TestTrustDomain("other.org")
    source = StaticSvidSource(svid_state(foreign.issue_svid("/a"), foreign.bundle_pem))
    proxy = SidecarProxy(outbound(1, B_ID), source, NoRevocation())
    with LoopThread() as loop, pytest.raises(ValidationError, match="not in trust domain"):
        loop.call(proxy.start())


def test_same_name_from_another_ca_is_refused(
    make_pair: Callable[..., Pair], td: TestTrustDomain
) -> None:
    impostor = TestTrustDomain(TD)  # same trust domain name, another key
    pair = make_pair(a_cert=impostor.issue_svid("/a"))
    assert http_get(pair.a_port) == (0, b"")
    assert pair.b.stats.accepted == 0
    assert pair.b.stats.handshake_failures >= 1


def test_certificate_with_two_uri_sans_is_refused(
    make_pair: Callable[..., Pair], td: TestTrustDomain, tmp_path: Path, logs: Records
) -> None:
    pair = make_pair()
    two = td.issue_svid("", uris=[A_ID, f"spiffe://{TD}/admin"])
    assert _raw_mtls(pair.b_port, two, tmp_path) == b""
    assert "peer certificate has 2 URI SANs, not exactly one" in logs.reasons(
        "inbound caller refused"
    )
    assert pair.responder.requests == 0  # A's own ready connections may be upstream


def test_outbound_refuses_a_peer_with_another_id(
    make_pair: Callable[..., Pair], td: TestTrustDomain, logs: Records
) -> None:
    pair = make_pair(b_cert=td.issue_svid("/not-b"))
    assert http_get(pair.a_port) == (0, b"")
    assert pair.a.stats.peer_refused >= 1
    assert "peer SPIFFE ID is not allowed here" in logs.reasons("outbound peer refused")
    assert pair.responder.requests == 0  # A's own ready connections may be upstream


def test_plaintext_client_is_refused(make_pair: Callable[..., Pair], logs: Records) -> None:
    pair = make_pair()
    with socket.create_connection((LOCAL, pair.b_port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert b"HTTP/1.1" not in answer
    assert pair.b.stats.handshake_failures >= 1
    assert "http request" in logs.reasons("inbound handshake refused")
    assert pair.responder.requests == 0  # A's own ready connections may be upstream


def _tls_client(td: TestTrustDomain, cert: IssuedCert, tmp_path: Path) -> ssl.SSLContext:
    (tmp_path / "c.pem").write_bytes(cert.chain_pem + cert.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=td.bundle_pem.decode())
    ctx.load_cert_chain(tmp_path / "c.pem")
    return ctx


def _server_serial(port: int, ctx: ssl.SSLContext) -> int:
    from cryptography import x509

    with socket.create_connection((LOCAL, port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_certificates_rotate_under_load_without_a_failed_request(
    make_pair: Callable[..., Pair], td: TestTrustDomain, tmp_path: Path
) -> None:
    pair = make_pair(pool_size=4)
    failures: list[object] = []
    done = [0]
    progress = threading.Condition()
    stop = threading.Event()

    def worker(keep_alive: bool) -> None:
        sock = socket.create_connection((LOCAL, pair.a_port), timeout=10) if keep_alive else None
        try:
            while not stop.is_set():
                result = http_get(pair.a_port, sock)
                if result != (200, BODY):
                    failures.append(result)
                with progress:
                    done[0] += 1
                    progress.notify_all()
        finally:
            if sock is not None:
                sock.close()

    def wait_for(count: int) -> None:
        with progress:
            assert progress.wait_for(lambda: done[0] >= count or failures, timeout=30)

    threads = [threading.Thread(target=worker, args=(i % 2 == 0,)) for i in range(4)]
    long_lived = socket.create_connection((LOCAL, pair.a_port), timeout=10)
    assert http_get(0, long_lived) == (200, BODY)
    for thread in threads:
        thread.start()
    try:
        b_cert = None
        for _ in range(5):
            wait_for(done[0] + 25)
            b_cert = td.issue_svid("/b")
            pair.a_source.update(svid_state(td.issue_svid("/a"), td.bundle_pem))
            pair.b_source.update(svid_state(b_cert, td.bundle_pem))
        wait_for(done[0] + 50)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == []
    assert done[0] >= 175
    assert pair.a.stats.rotations == 5 and pair.b.stats.rotations == 5
    assert http_get(0, long_lived) == (200, BODY)  # opened before the first rotation
    long_lived.close()
    assert b_cert is not None
    client = _tls_client(td, td.issue_svid("/a"), tmp_path)
    assert _server_serial(pair.b_port, client) == b_cert.serial  # new handshakes: new SVID


def test_file_source_rotation(td: TestTrustDomain, tmp_path: Path) -> None:
    files = {name: tmp_path / name for name in ("svid.pem", "key.pem", "bundle.pem")}

    def write(cert: IssuedCert) -> None:
        files["svid.pem"].write_bytes(cert.chain_pem)
        files["key.pem"].write_bytes(cert.key_pem)
        files["bundle.pem"].write_bytes(td.bundle_pem)

    first = td.issue_svid("/b")
    write(first)
    source = FileSvidSource(
        files["svid.pem"], files["key.pem"], files["bundle.pem"], poll_seconds=3600
    )
    assert source.current().serial_number == first.serial
    with LoopThread() as loop:
        responder = HttpResponder()
        proxy = SidecarProxy(inbound(loop.call(responder.start()), [A_ID]), source, NoRevocation())
        loop.call(proxy.start())
        port = proxy.addresses["api"].port
        client = _tls_client(td, td.issue_svid("/a"), tmp_path)
        assert _server_serial(port, client) == first.serial
        assert source.poll() is False  # nothing changed
        files["key.pem"].write_bytes(td.issue_svid("/b").key_pem)  # torn write: key of another
        assert source.poll() is False
        second = td.issue_svid("/b")
        write(second)
        assert source.poll() is True
        loop.call(asyncio.sleep(0))  # the rotation was queued on the loop before this
        assert _server_serial(port, client) == second.serial
        loop.call(proxy.close())
        loop.call(responder.close())
    source.close()
