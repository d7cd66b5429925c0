"""The SPIFFE Workload API, served with grpclib on a unix socket.

Why grpclib and not grpcio: a workload is identified by the kernel's peer credentials of
its connection (``SO_PEERCRED``), and grpcio's server never shows the accepted socket
(``context.peer()`` is just ``unix:`` for a unix socket; matching ``/proc/net/unix``
inodes to find the peer is racy and needs the ``sock_diag`` netlink API to see peers).
grpclib is a pure-asyncio gRPC server: each request's stream knows its connection's
transport, and the transport gives the socket, so :func:`connection_socket` reads
``SO_PEERCRED`` on the very socket the request came in on. Clients (py-spiffe, go-spiffe,
Envoy) speak ordinary gRPC over HTTP/2 to it.

Every call must carry the metadata ``workload.spiffe.io: true`` (else ``InvalidArgument``,
as the standard says). The caller is then attested (:mod:`strongroom.mesh.agent.attest`) and
matched against the registration entries of the agent's trust domain; a caller with no
matching entry gets ``PermissionDenied`` ("no identity issued", as SPIRE answers), except
for ``ValidateJWTSVID``, which any local process may use to check a token.

``FetchX509SVID`` sends the caller's SVIDs (a fresh key pair each time) at once and again at
the earliest half life (:attr:`X509Svid.renew_at`), waiting through the injected
:class:`~strongroom.mesh.agent.schedule.Scheduler`; every ``refresh_s`` seconds it also rereads
the entries and revocations and sends a new response when the caller's IDs changed, or ends
the stream with ``PermissionDenied`` when none is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import struct_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream

from strongroom.errors import AccessDeniedError, StrongroomError, ValidationError
from strongroom.mesh.agent.attest import (
    PeerCredentials,
    PeerSocket,
    peer_credentials,
    workload_selectors,
)
from strongroom.mesh.agent.metrics import AgentStats, HasAgentStats, counted
from strongroom.mesh.agent.peer_process import BoundPeer, bind_peer
from strongroom.mesh.agent.ports import EntrySource, WorkloadAuthority
from strongroom.mesh.agent.schedule import Scheduler
from strongroom.mesh.identity.registry import Selector
from strongroom.mesh.identity.spiffe_id import SpiffeId
from strongroom.mesh.identity.svid import X509Svid
from strongroom.mesh.proto import workload_pb2 as pb
from strongroom.mesh.proto.workload_grpc import SpiffeWorkloadAPIBase

_log = logging.getLogger("strongroom.mesh.agent.serve")
SECURITY_HEADER = "workload.spiffe.io"
NO_IDENTITY = "no identity issued"
DEFAULT_REFRESH_S = 5.0


@dataclass(frozen=True, slots=True)
class Workload:
    """A caller as attested: its peer credentials and the selectors they give."""

    credentials: PeerCredentials
    selectors: frozenset[Selector]


def connection_socket(stream: Stream[Any, Any]) -> PeerSocket:
    """The accepted socket a request arrived on (grpclib keeps its transport on the peer)."""
    transport = getattr(stream.peer, "_transport", None)
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None:
        raise GRPCError(Status.PERMISSION_DENIED, "the connection cannot be attested")
    return sock  # type: ignore[no-any-return]


_BOUND: weakref.WeakKeyDictionary[Any, tuple[Workload, BoundPeer]] = weakref.WeakKeyDictionary()
"""Per connection (its transport): the workload as attested on its first request."""


def attest_stream(stream: Stream[Any, Any]) -> Workload:
    """Attest the caller of ``stream``: once per connection, then check it is unchanged.

    The first request of a connection is attested by ``SO_PEERCRED`` and ``/proc`` and the
    peer process bound to it (:mod:`strongroom.mesh.agent.peer_process`); every later request on
    it is refused if that process has since execed, exited or given its pid away.
    """
    transport = getattr(stream.peer, "_transport", None)
    try:
        known = _BOUND.get(transport) if transport is not None else None
        if known is not None:
            known[1].check_unchanged()
            return known[0]
        sock = connection_socket(stream)
        creds = peer_credentials(sock)
        bound = bind_peer(sock, creds.pid)
        selectors = workload_selectors(creds)
        if not bound.path_trusted:
            selectors = frozenset(s for s in selectors if s.key != "path")
        workload = Workload(creds, selectors)
        bound.check_unchanged()  # no exec between the bind and the selectors' read
    except AccessDeniedError as exc:
        raise GRPCError(Status.PERMISSION_DENIED, str(exc)) from exc
    if transport is not None:
        with contextlib.suppress(TypeError):  # a transport that takes no weak reference
            _BOUND[transport] = (workload, bound)
    return workload


T = TypeVar("T")


async def _off_loop(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking call of the authority in a thread; a failing key service is UNAVAILABLE.

    With ``--endpoint`` the authority is a server over the network: its outage must reach
    the workload as a status its client retries, not as an internal error of the agent.
    """
    try:
        return await asyncio.to_thread(func, *args)
    except (AccessDeniedError, ValidationError):
        raise
    except StrongroomError as exc:
        _log.warning("the mesh authority failed: %s: %s", exc.aws_type, exc)
        raise GRPCError(Status.UNAVAILABLE, "the mesh authority is unavailable") from exc


class WorkloadApi(SpiffeWorkloadAPIBase, HasAgentStats):
    """The Workload API of one trust domain over a mesh CA and its registration entries."""

    def __init__(
        self,
        ca: WorkloadAuthority,
        registry: EntrySource,
        scheduler: Scheduler,
        *,
        svid_ttl_s: float | None = None,
        jwt_ttl_s: float | None = None,
        refresh_s: float = DEFAULT_REFRESH_S,
        attest: Callable[[Stream[Any, Any]], Workload] = attest_stream,
    ) -> None:
        self._ca = ca
        self._registry = registry
        self._scheduler = scheduler
        self._svid_ttl_s = svid_ttl_s
        self._jwt_ttl_s = jwt_ttl_s
        self._refresh_s = refresh_s
        self._attest = attest
        self.stats = AgentStats()

    # -- admission ------------------------------------------------------------------------

    def _check_header(self, stream: Stream[Any, Any]) -> None:
        if stream.metadata is None or stream.metadata.get(SECURITY_HEADER) != "true":
            raise GRPCError(Status.INVALID_ARGUMENT, "security header missing from request")

    async def _admit(self, stream: Stream[Any, Any]) -> Workload:
        self._check_header(stream)
        return await asyncio.to_thread(self._attest, stream)

    def entitled(self, workload: Workload) -> list[SpiffeId]:
        """The IDs ``workload`` may have now: matching entries, less revoked IDs."""
        domain = self._ca.trust_domain
        ids = sorted({e.spiffe_id for e in self._registry.match(workload.selectors, domain)})
        return [i for i in ids if not self._ca.is_revoked(i)]

    async def _entitled_or_deny(self, workload: Workload) -> list[SpiffeId]:
        ids = await _off_loop(self.entitled, workload)
        if not ids:
            _log.info(
                "workload pid=%d uid=%d gid=%d: %s",
                workload.credentials.pid,
                workload.credentials.uid,
                workload.credentials.gid,
                NO_IDENTITY,
            )
            raise GRPCError(Status.PERMISSION_DENIED, NO_IDENTITY)
        return ids

    # -- X.509 ----------------------------------------------------------------------------

    def _issue(self, ids: list[SpiffeId]) -> list[X509Svid]:
        issued = []
        for spiffe_id in ids:
            try:
                issued.append(self._ca.new_svid(spiffe_id, self._svid_ttl_s))
            except AccessDeniedError:
                continue  # revoked since the entries were read
        return issued

    @counted
    async def FetchX509SVID(self, stream: Stream[pb.X509SVIDRequest, pb.X509SVIDResponse]) -> None:
        """Stream the caller's X.509-SVIDs, with a fresh set before each half life."""
        workload = await self._admit(stream)
        await stream.recv_message()
        ids = await self._entitled_or_deny(workload)
        clock = self._scheduler.clock
        while True:
            svids = await _off_loop(self._issue, ids)
            if not svids:
                raise GRPCError(Status.PERMISSION_DENIED, NO_IDENTITY)
            self.stats.x509_svids += len(svids)
            bundle = await _off_loop(self._ca.trust_bundle_der)
            await stream.send_message(
                pb.X509SVIDResponse(
                    svids=[
                        pb.X509SVID(
                            spiffe_id=str(s.spiffe_id),
                            x509_svid=s.chain_der(),
                            x509_svid_key=s.key_der(),
                            bundle=bundle,
                        )
                        for s in svids
                    ]
                )
            )
            renew_at = min(s.renew_at for s in svids)
            while clock.now() < renew_at:
                await self._scheduler.sleep_until(min(renew_at, clock.now() + self._refresh_s))
                now_ids = await self._entitled_or_deny(workload)
                if now_ids != ids:
                    ids = now_ids
                    break

    @counted
    async def FetchX509Bundles(
        self, stream: Stream[pb.X509BundlesRequest, pb.X509BundlesResponse]
    ) -> None:
        """Stream the trust domain's X.509 bundle, again whenever it changes."""
        workload = await self._admit(stream)
        await stream.recv_message()
        await self._entitled_or_deny(workload)
        key = str(self._ca.trust_domain.id)
        await self._stream_changes(
            stream,
            workload,
            self._ca.trust_bundle_der,
            lambda der: pb.X509BundlesResponse(bundles={key: der}),
        )

    # -- JWT ------------------------------------------------------------------------------

    @counted
    async def FetchJWTSVID(self, stream: Stream[pb.JWTSVIDRequest, pb.JWTSVIDResponse]) -> None:
        """JWT-SVIDs for the requested audience: for one of the caller's IDs, or all."""
        workload = await self._admit(stream)
        request = await stream.recv_message()
        if request is None or not request.audience:
            raise GRPCError(Status.INVALID_ARGUMENT, "audience must be specified")
        ids = await self._entitled_or_deny(workload)
        if request.spiffe_id:
            try:
                wanted = SpiffeId.parse(request.spiffe_id)
            except ValidationError as exc:
                raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from exc
            if wanted not in ids:
                raise GRPCError(Status.PERMISSION_DENIED, NO_IDENTITY)
            ids = [wanted]
        audience = list(request.audience)

        def sign() -> list[pb.JWTSVID]:
            signed = []
            for spiffe_id in ids:
                try:
                    token = self._ca.new_jwt_svid(spiffe_id, audience, self._jwt_ttl_s).token
                except AccessDeniedError:
                    continue  # revoked since the entries were read
                signed.append(pb.JWTSVID(spiffe_id=str(spiffe_id), svid=token))
            return signed

        try:
            svids = await _off_loop(sign)
        except ValidationError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from exc
        if not svids:
            raise GRPCError(Status.PERMISSION_DENIED, NO_IDENTITY)
        self.stats.jwt_svids += len(svids)
        await stream.send_message(pb.JWTSVIDResponse(svids=svids))

    @counted
    async def FetchJWTBundles(
        self, stream: Stream[pb.JWTBundlesRequest, pb.JWTBundlesResponse]
    ) -> None:
        """Stream the trust domain's JWT bundle (a JWK Set), again whenever it changes."""
        workload = await self._admit(stream)
        await stream.recv_message()
        await self._entitled_or_deny(workload)
        key = str(self._ca.trust_domain.id)

        def jwks() -> bytes:
            return json.dumps(self._ca.jwt_bundle(), sort_keys=True).encode("utf-8")

        await self._stream_changes(
            stream, workload, jwks, lambda doc: pb.JWTBundlesResponse(bundles={key: doc})
        )

    @counted
    async def ValidateJWTSVID(
        self, stream: Stream[pb.ValidateJWTSVIDRequest, pb.ValidateJWTSVIDResponse]
    ) -> None:
        """Check a JWT-SVID for an audience; answer its SPIFFE ID and claims."""
        self._check_header(stream)
        request = await stream.recv_message()
        if request is None or not request.audience:
            raise GRPCError(Status.INVALID_ARGUMENT, "audience must be specified")
        if not request.svid:
            raise GRPCError(Status.INVALID_ARGUMENT, "svid must be specified")
        try:
            svid = await asyncio.to_thread(
                self._ca.validate_jwt_svid, request.svid, request.audience
            )
        except StrongroomError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from exc
        claims = struct_pb2.Struct()
        claims.update(svid.claims())
        await stream.send_message(
            pb.ValidateJWTSVIDResponse(spiffe_id=str(svid.spiffe_id), claims=claims)
        )

    # -- streams of bundles -----------------------------------------------------------------

    async def _stream_changes(
        self,
        stream: Stream[Any, Any],
        workload: Workload,
        read: Callable[[], bytes],
        message: Callable[[bytes], Any],
    ) -> None:
        """Send ``message(read())`` now and whenever it changes; end if the identity goes."""
        clock = self._scheduler.clock
        sent: bytes | None = None
        while True:
            current = await _off_loop(read)
            if current != sent:
                await stream.send_message(message(current))
                sent = current
            await self._scheduler.sleep_until(clock.now() + self._refresh_s)
            await self._entitled_or_deny(workload)
