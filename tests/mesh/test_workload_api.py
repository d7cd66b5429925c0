"""The Workload API over its unix socket with a grpclib client in this process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from strongroom.errors import ValidationError
from strongroom.mesh.agent.serve import AgentServer, AgentThread
from strongroom.mesh.agent.workload_api import WorkloadApi
from strongroom.mesh.identity.svid import certificates_from_der
from strongroom.mesh.proto import workload_pb2 as pb
from strongroom.mesh.proto.workload_grpc import SpiffeWorkloadAPIStub

if TYPE_CHECKING:
    from tests.mesh.conftest import Mesh

HEADER = {"workload.spiffe.io": "true"}
WEB = "spiffe://example.org/web"
DB = "spiffe://example.org/db"


def call(agent: AgentThread, body: Callable[[SpiffeWorkloadAPIStub], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        channel = Channel(path=str(agent.socket_path))
        try:
            return await asyncio.wait_for(body(SpiffeWorkloadAPIStub(channel)), 20)
        finally:
            channel.close()

    return asyncio.run(main())


def status_of(
    agent: AgentThread, body: Callable[[SpiffeWorkloadAPIStub], Awaitable[Any]]
) -> Status:
    with pytest.raises(GRPCError) as raised:
        call(agent, body)
    return raised.value.status


def _me(mesh: Mesh, spiffe_id: str = WEB, *extra: str) -> str:
    return mesh.registry.register(spiffe_id, [f"unix:uid:{os.getuid()}", *extra]).entry_id


def _svids(response: pb.X509SVIDResponse | None) -> list[pb.X509SVID]:
    assert response is not None
    return list(response.svids)


async def _first_x509(stub: SpiffeWorkloadAPIStub) -> pb.X509SVIDResponse:
    async with stub.FetchX509SVID.open(metadata=HEADER) as stream:
        await stream.send_message(pb.X509SVIDRequest(), end=True)
        first = await stream.recv_message()
        await stream.cancel()  # a stream of updates never ends by itself
        assert first is not None
        return first


def test_unregistered_callers_get_permission_denied(mesh: Mesh, agent: AgentThread) -> None:
    assert status_of(agent, _first_x509) is Status.PERMISSION_DENIED
    assert (
        status_of(
            agent, lambda s: s.FetchJWTSVID(pb.JWTSVIDRequest(audience=["a"]), metadata=HEADER)
        )
        is Status.PERMISSION_DENIED
    )
    mesh.registry.register(WEB, ["unix:uid:4242"])  # someone else's entry
    assert status_of(agent, _first_x509) is Status.PERMISSION_DENIED


def test_every_matching_entry_gives_an_svid(mesh: Mesh, agent: AgentThread) -> None:
    _me(mesh)
    _me(mesh, DB, f"unix:path:{os.path.realpath(sys.executable)}")  # this very binary
    mesh.registry.register(
        "spiffe://example.org/sh", [f"unix:uid:{os.getuid()}", "unix:path:/bin/sh"]
    )
    response = call(agent, _first_x509)
    assert sorted(s.spiffe_id for s in response.svids) == [DB, WEB]
    for svid in response.svids:
        chain = certificates_from_der(svid.x509_svid)
        assert len(chain) == 2
        assert svid.bundle == mesh.ca.trust_bundle_der()
        assert svid.x509_svid_key.startswith(b"\x30")  # PKCS#8 DER


def test_jwt_svid_requests(mesh: Mesh, agent: AgentThread) -> None:
    _me(mesh)
    _me(mesh, DB)
    assert (
        status_of(agent, lambda s: s.FetchJWTSVID(pb.JWTSVIDRequest(), metadata=HEADER))
        is Status.INVALID_ARGUMENT
    )
    both = call(agent, lambda s: s.FetchJWTSVID(pb.JWTSVIDRequest(audience=["x"]), metadata=HEADER))
    assert sorted(s.spiffe_id for s in both.svids) == [DB, WEB]
    one = call(
        agent,
        lambda s: s.FetchJWTSVID(pb.JWTSVIDRequest(audience=["x"], spiffe_id=DB), metadata=HEADER),
    )
    assert [s.spiffe_id for s in one.svids] == [DB]
    not_mine = pb.JWTSVIDRequest(audience=["x"], spiffe_id="spiffe://example.org/admin")
    assert (
        status_of(agent, lambda s: s.FetchJWTSVID(not_mine, metadata=HEADER))
        is Status.PERMISSION_DENIED
    )
    token = one.svids[0].svid
    checked = call(
        agent,
        lambda s: s.ValidateJWTSVID(
            pb.ValidateJWTSVIDRequest(audience="x", svid=token), metadata=HEADER
        ),
    )
    assert checked.spiffe_id == DB
    assert checked.claims["sub"] == DB and list(checked.claims["aud"]) == ["x"]
    for bad in (
        pb.ValidateJWTSVIDRequest(audience="y", svid=token),
        pb.ValidateJWTSVIDRequest(audience="x", svid=token + "x"),
        pb.ValidateJWTSVIDRequest(audience="x"),
        pb.ValidateJWTSVIDRequest(svid=token),
    ):

        def validate(
            s: SpiffeWorkloadAPIStub, bad: pb.ValidateJWTSVIDRequest = bad
        ) -> Awaitable[Any]:
            return s.ValidateJWTSVID(bad, metadata=HEADER)

        assert status_of(agent, validate) is Status.INVALID_ARGUMENT


def test_bundles_are_streamed(mesh: Mesh, agent: AgentThread) -> None:
    _me(mesh)

    async def first(stub: SpiffeWorkloadAPIStub, method: str, request: Any) -> Any:
        async with getattr(stub, method).open(metadata=HEADER) as stream:
            await stream.send_message(request, end=True)
            message = await stream.recv_message()
            await stream.cancel()
            return message

    x509_bundles = call(agent, lambda s: first(s, "FetchX509Bundles", pb.X509BundlesRequest()))
    assert dict(x509_bundles.bundles) == {"spiffe://example.org": mesh.ca.trust_bundle_der()}
    jwt_bundles = call(agent, lambda s: first(s, "FetchJWTBundles", pb.JWTBundlesRequest()))
    assert json.loads(jwt_bundles.bundles["spiffe://example.org"]) == mesh.ca.jwt_bundle()


def test_the_stream_follows_entries_and_revocations(mesh: Mesh, agent: AgentThread) -> None:
    web_entry = _me(mesh)
    _me(mesh, DB)
    scheduler = mesh.scheduler

    async def body(stub: SpiffeWorkloadAPIStub) -> list[list[str]]:
        seen: list[list[str]] = []
        try:
            async with stub.FetchX509SVID.open(metadata=HEADER) as stream:
                await stream.send_message(pb.X509SVIDRequest(), end=True)
                seen.append(sorted(s.spiffe_id for s in _svids(await stream.recv_message())))
                await asyncio.to_thread(mesh.ca.revoke, DB)
                while scheduler.sleepers == 0:
                    await asyncio.sleep(0.01)
                scheduler.advance(5)  # one refresh: the revocation is noticed
                seen.append(sorted(s.spiffe_id for s in _svids(await stream.recv_message())))
                await asyncio.to_thread(mesh.registry.unregister, web_entry)
                while scheduler.sleepers == 0:
                    await asyncio.sleep(0.01)
                scheduler.advance(5)
                await stream.recv_message()
        except GRPCError as exc:  # the stream ends with the status
            seen.append([exc.status.name])
        return seen

    assert call(agent, body) == [[DB, WEB], [WEB], ["PERMISSION_DENIED"]]


def test_socket_files(mesh: Mesh, socket_dir: Path) -> None:
    path = socket_dir / "agent.sock"
    api = WorkloadApi(mesh.ca, mesh.registry, mesh.scheduler)
    with AgentThread(api, path) as running:
        assert oct(path.stat().st_mode & 0o777) == "0o777"
        with pytest.raises(ValidationError, match="another agent"):
            AgentThread(api, path).start()
        assert running.endpoint == f"unix://{path}"
    assert not path.exists()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody answers on
    with AgentThread(api, path):
        assert call_ok(path)
    path.write_text("not a socket")
    with pytest.raises(ValidationError, match="not a socket"):
        AgentThread(api, path).start()
    with pytest.raises(ValidationError):
        AgentServer(api, socket_dir / ("x" * 120))


def call_ok(path: Path) -> bool:
    async def main() -> bool:
        channel = Channel(path=str(path))
        try:
            stub = SpiffeWorkloadAPIStub(channel)
            await stub.FetchJWTSVID(pb.JWTSVIDRequest(audience=["a"]), metadata=HEADER)
        except GRPCError as exc:
            return exc.status is Status.PERMISSION_DENIED  # answered: nobody registered
        finally:
            channel.close()
        return True

    return asyncio.run(main())
