"""The egress proxy: CONNECT only, allow-listed hosts only, TLS only, verified upstreams only.

Upstreams are local servers: HTTPS with a certificate from a test CA (the egress's
configured trust store), HTTPS with a self-signed certificate, HTTPS with a certificate
for another name, and a plaintext HTTP server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import ValidationError
from strongroom.mesh.proxy.egress import EgressProxy
from strongroom.mesh.proxy.egress_tls import ClientHello, parse_client_hello
from strongroom.mesh.proxy.policy_egress import EgressConfig, HostPattern, parse_egress_config
from strongroom.mesh.proxy.yaml_config import Address
from strongroom.testing.children import die_with_parent
from strongroom.testing.mesh_certs import IssuedCert, TestTrustDomain, self_signed_server
from strongroom.testing.mesh_proxy import BODY, HttpResponder, LoopThread, read_response
from strongroom.testing.server import free_port

LOCAL = "127.0.0.1"


class _Rude(asyncio.Protocol):
    """A plaintext server that answers anything with an HTTP 400 and hangs up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")  # type: ignore[attr-defined]
        self.transport.close()


def _server_context(cert: IssuedCert, folder: Path, name: str) -> ssl.SSLContext:
    path = folder / f"{name}.pem"
    path.write_bytes(cert.chain_pem + cert.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(path)
    return ctx


@dataclass
class World:
    loop: LoopThread
    td: TestTrustDomain
    egress: EgressProxy
    good: HttpResponder
    good_port: int
    self_signed_port: int
    wrong_name_port: int
    plain_port: int

    @property
    def egress_port(self) -> int:
        assert self.egress.address is not None
        return self.egress.address.port

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.td.bundle_pem.decode())


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def refusals(self) -> list[str]:
        return [
            str(r.fields["reason"])  # type: ignore[attr-defined]
            for r in list(self.records)
            if r.getMessage() == "egress refused"
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


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    td = TestTrustDomain("egress.test")
    (tmp_path / "ca.pem").write_bytes(td.bundle_pem)
    with LoopThread() as loop:
        good, self_signed, wrong_name = HttpResponder(), HttpResponder(), HttpResponder()
        good_port = loop.call(
            good.start(ssl_context=_server_context(td.issue_server(["localhost"]), tmp_path, "g"))
        )
        ss_port = loop.call(
            self_signed.start(
                ssl_context=_server_context(self_signed_server(["localhost"]), tmp_path, "s")
            )
        )
        wn_port = loop.call(
            wrong_name.start(
                ssl_context=_server_context(td.issue_server(["other.test"]), tmp_path, "w")
            )
        )

        async def rude() -> asyncio.Server:
            return await asyncio.get_running_loop().create_server(_Rude, LOCAL, 0)

        plain = loop.call(rude())
        plain_port = plain.sockets[0].getsockname()[1]
        ports = (good_port, ss_port, wn_port, plain_port)
        allow = (*(HostPattern("localhost", p) for p in ports), HostPattern(LOCAL, good_port))
        config = EgressConfig(Address(LOCAL, 0), allow, ca_file=tmp_path / "ca.pem")
        egress = EgressProxy(config)
        loop.call(egress.start())
        yield World(loop, td, egress, good, good_port, ss_port, wn_port, plain_port)
        loop.call(egress.close())
        for server in (good, self_signed, wrong_name):
            loop.call(server.close())
        plain.close()


def connect(world: World, target: str, method: str = "CONNECT") -> tuple[int, socket.socket]:
    sock = socket.create_connection((LOCAL, world.egress_port), timeout=10)
    sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ")[1]) if head else 0
    return status, sock


def https_get(
    world: World, sock: socket.socket, server_name: str = "localhost"
) -> tuple[int, bytes]:
    with world.client_context().wrap_socket(sock, server_hostname=server_name) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        return read_response(tls)


def test_allowed_verified_tls_host_works(world: World, logs: Records) -> None:
    status, sock = connect(world, f"localhost:{world.good_port}")
    assert status == 200
    assert https_get(world, sock) == (200, BODY)
    assert world.good.connections == 2  # the egress's own verification, then the tunnel
    status, sock = connect(world, f"localhost:{world.good_port}")
    assert status == 200
    assert https_get(world, sock) == (200, BODY)
    assert world.good.connections == 3  # verification cached
    assert world.egress.tunnels == 2
    assert logs.refusals() == []
    tunnels = [r for r in logs.records if r.getMessage() == "egress tunnel"]
    assert tunnels[0].fields["host"] == "localhost"  # type: ignore[attr-defined]


def test_plaintext_through_the_tunnel_is_refused(world: World, logs: Records) -> None:
    status, sock = connect(world, f"localhost:{world.good_port}")
    assert status == 200
    with sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096) == b""
    assert world.good.requests == 0
    assert logs.refusals() == [
        "client did not start TLS: first bytes are not a TLS handshake record"
    ]


def test_plaintext_upstream_is_refused(world: World, logs: Records) -> None:
    status, sock = connect(world, f"localhost:{world.plain_port}")
    sock.close()
    assert status == 502
    (reason,) = logs.refusals()
    assert reason.startswith("upstream TLS handshake failed")


def test_self_signed_upstream_is_refused(world: World, logs: Records) -> None:
    status, sock = connect(world, f"localhost:{world.self_signed_port}")
    sock.close()
    assert status == 502
    (reason,) = logs.refusals()
    assert reason.startswith("upstream certificate not verified: self")


def test_upstream_with_another_name_is_refused(world: World, logs: Records) -> None:
    status, sock = connect(world, f"localhost:{world.wrong_name_port}")
    sock.close()
    assert status == 502
    assert "mismatch" in logs.refusals()[0].lower()


def test_ip_target_is_verified_against_the_ip(world: World, logs: Records) -> None:
    status, sock = connect(world, f"127.0.0.1:{world.good_port}")  # cert names localhost only
    sock.close()
    assert status == 502
    assert "mismatch" in logs.refusals()[0].lower()


def test_host_not_on_the_allow_list_is_refused(world: World, logs: Records) -> None:
    for target in ("example.com:443", f"localhost:{world.good_port + 1}", "[::1]:443"):
        status, sock = connect(world, target)
        sock.close()
        assert status == 403, target
    assert logs.refusals() == ["host not on the allow-list"] * 3
    assert world.good.connections == 0


def test_only_connect_is_offered(world: World, logs: Records) -> None:
    status, sock = connect(world, f"http://localhost:{world.good_port}/", method="GET")
    sock.close()
    assert status == 405
    assert logs.refusals() == ["GET refused: only CONNECT tunnels to TLS servers"]


def test_sni_must_name_the_connect_host(world: World, logs: Records) -> None:
    status, sock = connect(world, f"localhost:{world.good_port}")
    assert status == 200
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(world, sock, server_name="elsewhere.test")
    assert logs.refusals() == ["SNI 'elsewhere.test' is not the CONNECT host"]
    assert world.good.requests == 0


def test_silent_client_is_dropped(world: World, logs: Records) -> None:
    world.egress.config = replace(world.egress.config, connect_timeout=0.3)
    with socket.create_connection((LOCAL, world.egress_port), timeout=10) as sock:
        assert sock.recv(4096).startswith(b"HTTP/1.1 408 ")
    status, sock = connect(world, f"localhost:{world.good_port}")
    with sock:
        assert status == 200
        assert sock.recv(4096) == b""  # no ClientHello in time
    assert logs.refusals() == [
        "client sent no request in time",
        "client sent no ClientHello in time",
    ]


def test_egress_process(world: World, tmp_path: Path) -> None:
    metrics_port = free_port()
    (tmp_path / "egress.yaml").write_text(
        f"""listen: 127.0.0.1:0
allow: ["localhost:{world.good_port}"]
ca_file: ca.pem
verify_cache_seconds: 5
"""
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom.cli",
            "mesh",
            "egress",
            "-c",
            str(tmp_path / "egress.yaml"),
            "--metrics-port",
            str(metrics_port),
        ],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent(),  # gone even if this test process is killed
    )
    try:
        assert proc.stderr is not None
        first = json.loads(proc.stderr.readline())
        assert first["message"] == "listening"
        port = int(first["address"].rsplit(":", 1)[1])
        world.egress.address = Address(LOCAL, port)  # talk to the process instead
        status, sock = connect(world, f"localhost:{world.good_port}")
        assert status == 200
        assert https_get(world, sock) == (200, BODY)
        status, sock = connect(world, "example.com:443")
        sock.close()
        assert status == 403
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
        assert "strongroom_mesh_egress_tunnels_total 1.0" in text
        assert "strongroom_mesh_egress_refused_total 1.0" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        lines = [json.loads(line) for line in proc.stderr.read().splitlines()]
        refused = [line for line in lines if line["message"] == "egress refused"]
        assert refused[0]["host"] == "example.com"
        assert refused[0]["reason"] == "host not on the allow-list"
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


# -- pure parts -------------------------------------------------------------------------


@functools.cache
def _hello_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no trust store needed to say hello


def _client_hello(server_name: str | None) -> bytes:
    ctx = _hello_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


_label = st.from_regex(r"[a-z][a-z0-9]{0,19}", fullmatch=True)  # no IP literal: no SNI


@given(st.lists(_label, min_size=1, max_size=4).map(".".join), st.integers(0, 400))
def test_real_client_hellos_parse_and_prefixes_ask_for_more(name: str, cut: int) -> None:
    hello = _client_hello(name)
    assert parse_client_hello(hello) == ClientHello(name)
    assert parse_client_hello(hello[: min(cut, len(hello) - 1)]) is None


def test_client_hello_without_sni() -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    assert parse_client_hello(outgoing.read()) == ClientHello(None)


@given(st.binary(max_size=600))
def test_parse_client_hello_never_raises(data: bytes) -> None:
    result = parse_client_hello(data)
    assert result is None or isinstance(result, (str, ClientHello))


@given(st.binary(min_size=1, max_size=200))
def test_bytes_that_are_not_a_handshake_are_refused(data: bytes) -> None:
    if data[0] != 0x16:
        assert parse_client_hello(data) == "first bytes are not a TLS handshake record"


def test_host_patterns() -> None:
    wild = HostPattern.parse("*.Example.com:443")
    assert wild.matches("api.example.com", 443)
    assert wild.matches("API.EXAMPLE.COM.", 443)
    assert not wild.matches("example.com", 443)
    assert not wild.matches("a.b.example.com", 443)
    assert not wild.matches("api.example.com", 80)
    any_port = HostPattern.parse("db.internal:*")
    assert any_port.matches("db.internal", 5432) and not any_port.matches("db.internal2", 5432)
    assert HostPattern.parse("[::1]:443").matches("::1", 443)
    for bad in ("example.com", "ex ample.com:443", "*.com*:443", "host:0", "host:99999", ":443"):
        with pytest.raises(ValueError):
            HostPattern.parse(bad)


def test_egress_config_errors(tmp_path: Path) -> None:
    config = parse_egress_config("listen: 127.0.0.1:3128\nallow: [api.example.com:443]\n")
    assert config.allowed("api.example.com", 443) and not config.allowed("example.com", 443)
    assert config.ca_file is None  # the system trust store
    with pytest.raises(ValidationError, match=r"<e>:2: allow: the allow-list is empty"):
        parse_egress_config("listen: 127.0.0.1:3128\nallow: []\n", "<e>")
    with pytest.raises(ValidationError, match=r"<e>:4: allow\[1\]: not a host:port pattern"):
        parse_egress_config("listen: 127.0.0.1:3128\nallow:\n  - a.com:443\n  - b.com\n", "<e>")
    with pytest.raises(ValidationError, match=r"<e>:2: ca_file: no such file"):
        parse_egress_config(
            "listen: 127.0.0.1:3128\nca_file: nowhere.pem\nallow: [a.com:443]\n", "<e>", tmp_path
        )
