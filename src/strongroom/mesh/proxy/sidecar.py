"""The mTLS sidecar proxy: inbound mTLS termination and outbound mTLS origination.

:class:`SidecarProxy` runs the listeners of a :class:`~strongroom.mesh.proxy.policy.ProxyPolicy`
on the running asyncio loop (uvloop in production, see :func:`run_proxy`):

- **inbound**: terminates mTLS (a client certificate chained to the trust bundle is
  required: a plaintext caller fails the handshake), checks the caller's SPIFFE ID against
  the listener's allow-list (deny by default) and the revocation hook, then relays bytes to
  the local plaintext ``upstream`` (connected when the caller's first bytes arrive);
- **outbound**: accepts plaintext on a local port and relays it over mTLS to ``peer``,
  whose certificate must carry exactly ``peer_id`` (see :mod:`.peer_check` for how peers
  are checked and :mod:`.proxy_pool` for pooling and session resumption).

Rotation: when the :class:`~strongroom.mesh.proxy.svid_source.SvidSource` reports a new SVID,
new ``SSLContext`` objects are built; new connections use them, connections already open
keep theirs, so nothing is dropped. Logs are JSON lines (logger ``strongroom.mesh.proxy.sidecar``),
never holding key material.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from strongroom.errors import ValidationError
from strongroom.mesh.proxy.peer_check import PeerVerifier, RevocationCheck
from strongroom.mesh.proxy.policy import InboundListener, OutboundListener, ProxyPolicy
from strongroom.mesh.proxy.pool import PeerPool
from strongroom.mesh.proxy.relay import Pipe, ProxyStats
from strongroom.mesh.proxy.svid_source import SvidSource, SvidState
from strongroom.mesh.proxy.tls import (
    ResumingClientContext,
    ServerContextSwitch,
    client_context,
    handshake_reason,
    watch_handshakes,
)
from strongroom.mesh.proxy.yaml_config import Address

_log = logging.getLogger("strongroom.mesh.proxy.sidecar")

BACKLOG = 1024


def _fields(**values: object) -> dict[str, object]:
    return {"fields": values}


@dataclass(slots=True)
class _Inbound:
    listener: InboundListener
    verifier: PeerVerifier
    stats: ProxyStats
    switch: ServerContextSwitch
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass(slots=True)
class _Outbound:
    listener: OutboundListener
    context: ResumingClientContext
    pool: PeerPool | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def current_context(self) -> ResumingClientContext:
        return self.context


def _spawn(tasks: set[asyncio.Task[None]], coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def check_svid_domain(state: SvidState, trust_domain: str) -> None:
    """Raise ``ValidationError`` unless the SVID of ``state`` is in ``trust_domain``."""
    if state.svid.spiffe_id.trust_domain.name != trust_domain:
        raise ValidationError(
            f"the SVID {state.svid.spiffe_id} is not in trust domain {trust_domain}"
        )


class InboundConn(Pipe):
    """A caller's mTLS connection on an inbound listener.

    An admitted caller's upstream connection is opened at once (in parallel with the
    caller's first bytes); the caller is checked again when its first bytes arrive, since
    an outbound sidecar keeps ready connections that may wait past a revocation.
    """

    inspects = True

    def __init__(self, route: _Inbound) -> None:
        super().__init__()
        self._route = route
        self._refused = False
        self._der: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Check the caller's identity; refuse it, or connect to the upstream."""
        super().connection_made(transport)
        self._der = transport.get_extra_info("ssl_object").getpeercert(True)
        if self._admit():
            self._route.stats.accepted += 1
            self.transport.pause_reading()  # type: ignore[union-attr]
            _spawn(self._route.tasks, self._connect())

    def _admit(self) -> bool:
        """Check the caller; close the connection (logged) if it may not pass."""
        route = self._route
        peer, reason = route.verifier.check(self._der, route.listener.allow)
        if not reason:
            return True
        self._refused = True
        route.stats.denied += 1
        transport = self.transport
        assert transport is not None
        _log.warning(
            "inbound caller refused",
            extra=_fields(
                listener=route.listener.name,
                client=transport.get_extra_info("peername"),
                peer_id=peer.spiffe_id if peer else None,
                reason=reason,
            ),
        )
        self.close()
        if self.peer is not None:
            self.peer.close()
        return False

    def data_received(self, data: bytes) -> None:
        """First bytes: check the caller again, relay, then relay without this method."""
        if self._refused:
            return
        peer = self.peer
        if peer is None:
            self.pending.append(data)  # arrived while the upstream connects
            return
        if not self._admit():
            return
        peer.transport.write(data)  # type: ignore[union-attr]
        self.go_direct()

    async def _connect(self) -> None:
        upstream = self._route.listener.upstream
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(Pipe, upstream.host, upstream.port)
        except OSError as exc:
            self._route.stats.upstream_failures += 1
            _log.warning(
                "upstream connect failed",
                extra=_fields(
                    listener=self._route.listener.name, upstream=str(upstream), error=str(exc)
                ),
            )
            self.close()
            return
        if self.closed:
            conn.close()
            return
        self.attach(conn)


class OutboundClient(Pipe):
    """A local plaintext client on an outbound listener."""

    def __init__(self, route: _Outbound) -> None:
        super().__init__()
        self._route = route

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Pair with a pooled mTLS connection, or open one."""
        super().connection_made(transport)
        pool = self._route.pool
        assert pool is not None
        conn = pool.take()
        if conn is not None:
            self.attach(conn)
            return
        self.transport.pause_reading()  # type: ignore[union-attr]
        _spawn(self._route.tasks, self._connect(pool))

    async def _connect(self, pool: PeerPool) -> None:
        conn = await pool.connect()
        if conn is None:
            self.close()
            return
        if self.closed:
            conn.close()
            return
        self.attach(conn)


class SidecarProxy:
    """The listeners of one policy, on the running event loop."""

    def __init__(
        self,
        policy: ProxyPolicy,
        source: SvidSource,
        revocation: RevocationCheck,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.stats = ProxyStats()
        self.addresses: dict[str, Address] = {}
        self._source = source
        self._verifier = PeerVerifier(policy.trust_domain, revocation, clock)
        self._servers: list[asyncio.Server] = []
        self._inbound: list[_Inbound] = []
        self._outbound: list[_Outbound] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serial = 0

    def _own(self, state: SvidState) -> None:
        check_svid_domain(state, self.policy.trust_domain)

    async def start(self) -> None:
        """Bind every listener and fill the outbound pools."""
        loop = self._loop = asyncio.get_running_loop()
        state = self._source.current()
        self._own(state)
        self._serial = state.serial_number
        for inbound in self.policy.inbound:
            switch = ServerContextSwitch(
                state,
                resumption=self.policy.session_resumption,
                keep_buffers=self.policy.keep_tls_buffers,
            )
            route = _Inbound(inbound, self._verifier, self.stats, switch)
            watch_handshakes(switch.front, self._handshake_failed(inbound.name))
            server = await loop.create_server(
                lambda route=route: InboundConn(route),  # type: ignore[misc]
                inbound.listen.host,
                inbound.listen.port,
                ssl=switch.front,
                ssl_handshake_timeout=10.0,
                backlog=BACKLOG,
                reuse_address=True,
            )
            self._serve(server, inbound.name, "inbound")
            self._inbound.append(route)
        for outbound in self.policy.outbound:
            out = _Outbound(outbound, self._client_context(state))
            out.pool = PeerPool(outbound, out.current_context, self._verifier, self.stats)
            server = await loop.create_server(
                lambda out=out: OutboundClient(out),  # type: ignore[misc]
                outbound.listen.host,
                outbound.listen.port,
                backlog=BACKLOG,
                reuse_address=True,
            )
            self._serve(server, outbound.name, "outbound")
            self._outbound.append(out)
            out.pool.refill()
        self._source.subscribe(self._changed)

    def _client_context(self, state: SvidState) -> ResumingClientContext:
        return client_context(state, keep_buffers=self.policy.keep_tls_buffers)

    def _serve(self, server: asyncio.Server, name: str, direction: str) -> None:
        self._servers.append(server)
        host, port = server.sockets[0].getsockname()[:2]
        self.addresses[name] = Address(host, port)
        _log.info(
            "listening",
            extra=_fields(listener=name, direction=direction, address=str(self.addresses[name])),
        )

    def _handshake_failed(self, name: str) -> Callable[[ssl.SSLError], None]:
        def failed(exc: ssl.SSLError) -> None:
            self.stats.handshake_failures += 1
            _log.warning(
                "inbound handshake refused",
                extra=_fields(listener=name, reason=handshake_reason(exc)),
            )

        return failed

    def _changed(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.rotate)

    def rotate(self) -> None:
        """Use the source's current SVID and bundle for new connections (on the loop)."""
        state = self._source.current()
        if state.serial_number == self._serial:
            return
        try:
            self._own(state)
            contexts = [self._client_context(state) for _ in self._outbound]
            for route in self._inbound:
                route.switch.rotate(state)
        except (ValidationError, ssl.SSLError, ValueError) as exc:
            _log.error("svid rotation refused", extra=_fields(error=str(exc)))
            return
        for out, ctx in zip(self._outbound, contexts, strict=True):
            out.context = ctx
            if out.pool is not None:
                out.pool.drain()
        self._serial = state.serial_number
        self.stats.rotations += 1
        _log.info(
            "svid rotated",
            extra=_fields(
                spiffe_id=str(state.svid.spiffe_id),
                serial=format(state.serial_number, "x"),
                not_after=state.svid.not_after,
            ),
        )

    def pool_ready(self, name: str) -> int:
        """Ready connections in the pool of outbound listener ``name``."""
        for out in self._outbound:
            if out.listener.name == name and out.pool is not None:
                return out.pool.ready
        raise KeyError(name)

    async def close(self) -> None:
        """Stop listening and close the pooled connections (open relays are left to end)."""
        for server in self._servers:
            server.close()
        for out in self._outbound:
            if out.pool is not None:
                out.pool.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
