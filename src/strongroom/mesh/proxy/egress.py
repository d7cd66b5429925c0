"""The egress proxy: HTTP CONNECT to allowed hosts, only over TLS, only to verified servers.

A service reaches the outside through ``CONNECT host:port``. The proxy:

1. refuses anything but ``CONNECT`` (no plaintext HTTP proxying: ``405``) and any
   ``host:port`` not on the allow-list (``403``);
2. resolves the host once and **verifies the upstream itself**: a TLS handshake of its own
   to an address of it (the next one if unreachable) with full verification (chain to the
   configured CA file or the system trust store, validity, host name), cached for
   ``verify_cache_seconds``; a plaintext, self-signed, expired or wrong-name upstream
   gets ``502``;
3. connects to the same address, answers ``200``, and reads the client's first bytes:
   they must be a TLS ClientHello whose SNI is the CONNECT host (for an IP literal: no
   SNI), else the tunnel is closed; the upstream's first bytes must be a TLS handshake or
   alert record;
4. then relays bytes both ways, untouched: the client's TLS session is end to end.

Why not terminate and re-originate TLS (a MITM proxy)? It would see every plaintext, need a
CA that all clients trust (a key that can impersonate the whole internet) and break
certificate pinning and client certificates. The trade-off of the chosen design: the
proxy proves that *the server at that address* holds a valid certificate for the name and
that the client speaks TLS for that name to it, but it does not see the certificate of
the client's own session (TLS 1.3 encrypts it); a client that skips its own verification
is still protected from a network attacker only as far as the address check goes. Every
decision is logged as a JSON line (logger ``strongroom.mesh.proxy.egress``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Coroutine
from typing import Any

from strongroom.mesh.proxy.egress_tls import (
    RECORD_ALERT,
    RECORD_HANDSHAKE,
    UNREACHABLE,
    ClientHello,
    UpstreamVerifier,
    parse_client_hello,
)
from strongroom.mesh.proxy.policy_egress import EgressConfig
from strongroom.mesh.proxy.relay import Pipe
from strongroom.mesh.proxy.yaml_config import Address, parse_address

_log = logging.getLogger("strongroom.mesh.proxy.egress")

MAX_HEAD = 8192
MAX_HELLO_BUFFER = 1 << 17
MAX_ADDRESSES = 4
"""Addresses of a host tried in turn when one is unreachable."""


def _reply(status: str, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n").encode(
        "ascii"
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Upstream(Pipe):
    """The upstream side: its first byte must open a TLS handshake or alert record."""

    inspects = True

    def __init__(self, owner: EgressClient) -> None:
        super().__init__()
        self._owner = owner
        self._checked = False

    def data_received(self, data: bytes) -> None:
        if not self._checked:
            self._checked = True
            if data[0] not in (RECORD_HANDSHAKE, RECORD_ALERT):
                self._owner.refuse("upstream did not answer in TLS")
                self.close()
                return
        super().data_received(data)
        if self.peer is not None:
            self.go_direct()


class EgressClient(Pipe):
    """A client connection: CONNECT head, checks, then the tunnel."""

    inspects = True

    def __init__(self, proxy: EgressProxy) -> None:
        super().__init__()
        self._proxy = proxy
        self._buffer = b""
        self._state = "head"
        self._target: Address | None = None
        self._upstream: _Upstream | None = None
        self._address = ""
        self._client: object = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Note the client address; give it ``connect_timeout`` seconds to start TLS."""
        super().connection_made(transport)
        self._client = transport.get_extra_info("peername")
        self._timer = asyncio.get_running_loop().call_later(
            self._proxy.config.connect_timeout, self._too_slow
        )

    def _too_slow(self) -> None:
        if self._state == "head":
            self.refuse("client sent no request in time", _reply("408 Request Timeout"))
        elif self._state == "hello":
            self.refuse("client sent no ClientHello in time")

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the timer; close the other side."""
        if self._timer is not None:
            self._timer.cancel()
        super().connection_lost(exc)

    def _log(self, level: int, message: str, **fields: object) -> None:
        target = self._target
        _log.log(
            level,
            message,
            extra={
                "fields": {
                    "client": self._client,
                    "host": target.host if target else None,
                    "port": target.port if target else None,
                    **fields,
                }
            },
        )

    def refuse(self, reason: str, reply: bytes = b"") -> None:
        """Log the refusal, answer ``reply`` (before the tunnel) and close both sides."""
        self._proxy.refused += 1
        self._log(logging.WARNING, "egress refused", reason=reason)
        self._state = "closed"
        if reply and self.transport is not None:
            self.transport.write(reply)
        if self._upstream is not None:
            self._upstream.close()
        self.close()

    def data_received(self, data: bytes) -> None:
        """Parse the CONNECT head, then the ClientHello, then relay."""
        if self._state == "relay":
            super().data_received(data)
        elif self._state == "head":
            self._head(self._buffer + data)
        elif self._state == "hello":
            self._hello(self._buffer + data)
        elif self._state == "wait":
            self._buffer += data

    def _head(self, data: bytes) -> None:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_HEAD:
                self.refuse("request head too large", _reply("431 Request Header Fields Too Large"))
            self._buffer = data
            return
        line = data[: data.find(b"\r\n")].decode("latin-1")
        self._buffer = data[end + 4 :]
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self.refuse("not an HTTP/1 request", _reply("400 Bad Request"))
            return
        method, target = parts[0], parts[1]
        if method != "CONNECT":
            self.refuse(
                f"{method[:16]} refused: only CONNECT tunnels to TLS servers",
                _reply("405 Method Not Allowed", "Allow: CONNECT\r\n"),
            )
            return
        try:
            self._target = parse_address(target)
        except ValueError:
            self.refuse("CONNECT target is not host:port", _reply("400 Bad Request"))
            return
        if not self._proxy.config.allowed(self._target.host, self._target.port):
            self.refuse("host not on the allow-list", _reply("403 Forbidden"))
            return
        self._state = "wait"
        self.transport.pause_reading()  # type: ignore[union-attr]
        self._proxy.spawn(self._open(self._target))

    async def _open(self, target: Address) -> None:
        proxy = self._proxy
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM),
                proxy.config.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            self.refuse(f"cannot resolve host: {exc}", _reply("502 Bad Gateway"))
            return
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))[:MAX_ADDRESSES]
        reason = "host has no address"
        for address in addresses:  # the first that is reachable, verified and connects
            reason = await proxy.verifier.verify(target.host, address, target.port)
            if reason.startswith(UNREACHABLE):
                continue
            if reason:
                break  # a server that answers but fails verification: refused
            try:
                _, upstream = await asyncio.wait_for(
                    loop.create_connection(lambda: _Upstream(self), address, target.port),
                    proxy.config.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                reason = f"{UNREACHABLE}: {exc}"
                continue
            break
        else:
            self.refuse(reason, _reply("502 Bad Gateway"))
            return
        if reason:
            self.refuse(reason, _reply("502 Bad Gateway"))
            return
        if self.closed:
            upstream.close()
            return
        self._upstream = upstream
        self._address = address
        self._state = "hello"
        self.transport.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")  # type: ignore[union-attr]
        self.transport.resume_reading()  # type: ignore[union-attr]
        if self._buffer:
            self._hello(self._buffer)

    def _hello(self, data: bytes) -> None:
        result = parse_client_hello(data)
        if result is None:
            if len(data) > MAX_HELLO_BUFFER:
                self.refuse("ClientHello too large")
            self._buffer = data
            return
        if not isinstance(result, ClientHello):
            self.refuse(f"client did not start TLS: {result}")
            return
        target = self._target
        assert target is not None and self._upstream is not None
        if _is_ip(target.host):
            if result.server_name is not None:
                self.refuse("SNI names a host but the CONNECT target is an IP address")
                return
        elif (result.server_name or "").lower().rstrip(".") != target.host.lower().rstrip("."):
            self.refuse(f"SNI {result.server_name!r} is not the CONNECT host")
            return
        self._state = "relay"
        self._buffer = b""
        if self._timer is not None:
            self._timer.cancel()
        self.pending.append(data)
        self._proxy.tunnels += 1
        self._log(logging.INFO, "egress tunnel", address=self._address)
        self.attach(self._upstream)
        self.go_direct()


class EgressProxy:
    """The egress listener of one configuration, on the running event loop."""

    def __init__(self, config: EgressConfig, verifier: UpstreamVerifier | None = None) -> None:
        self.config = config
        self.verifier = verifier or UpstreamVerifier(
            config.ca_file,
            cache_seconds=config.verify_cache_seconds,
            timeout=config.connect_timeout,
        )
        self.address: Address | None = None
        self.tunnels = 0
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task kept until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Start listening."""
        loop = asyncio.get_running_loop()
        listen = self.config.listen
        self._server = await loop.create_server(
            lambda: EgressClient(self), listen.host, listen.port, backlog=1024, reuse_address=True
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = Address(host, port)
        _log.info("listening", extra={"fields": {"address": str(self.address)}})

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
