"""``strongroom mesh healthcheck``: whether the Workload API agent on a socket is serving.

The check asks the agent what any workload would ask first (``FetchX509Bundles``, with the
``workload.spiffe.io`` header) and reads the answer:

- the bundle, or ``PermissionDenied`` (the checking process has no identity of its own):
  the agent attested the caller and read its entries, so it is serving;
- ``Unavailable``: the agent runs but cannot reach its key service (``--endpoint``);
- no answer (no socket, refused, timed out) or any other status: not serving.

A liveness or readiness probe (Kubernetes ``exec``, systemd) runs it and reads the exit
status, as SPIRE's ``spire-agent healthcheck`` is used.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from strongroom.mesh.agent.workload_api import SECURITY_HEADER
from strongroom.mesh.proto import workload_pb2 as pb
from strongroom.mesh.proto.workload_grpc import SpiffeWorkloadAPIStub

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class AgentHealth:
    """The outcome of one check: ``serving`` and what was seen."""

    serving: bool
    detail: str


async def check_agent(socket_path: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> AgentHealth:
    """Ask the agent on ``socket_path`` for the X.509 bundles; judge its answer."""
    if not socket_path.exists():
        return AgentHealth(False, f"no socket at {socket_path}")
    channel = Channel(path=str(socket_path))
    try:
        stub = SpiffeWorkloadAPIStub(channel)
        async with asyncio.timeout(timeout_s):
            async with stub.FetchX509Bundles.open(metadata={SECURITY_HEADER: "true"}) as stream:
                await stream.send_message(pb.X509BundlesRequest(), end=True)
                reply = await stream.recv_message()
                await stream.cancel()  # a stream of updates: one answer is enough
        count = 0 if reply is None else len(reply.bundles)
        return AgentHealth(True, f"serving ({count} trust bundle(s))")
    except GRPCError as exc:
        if exc.status is Status.PERMISSION_DENIED:
            return AgentHealth(True, "serving (this process has no identity of its own)")
        if exc.status is Status.UNAVAILABLE:
            return AgentHealth(False, f"the agent cannot reach its key service: {exc.message}")
        return AgentHealth(False, f"the agent answered {exc.status.name}: {exc.message}")
    except TimeoutError:
        return AgentHealth(False, f"no answer within {timeout_s:g} s")
    except (OSError, StreamTerminatedError, ConnectionError) as exc:
        return AgentHealth(False, f"cannot talk to the agent: {exc or type(exc).__name__}")
    finally:
        channel.close()
