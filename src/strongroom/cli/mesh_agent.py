"""``strongroom mesh agent`` and ``strongroom mesh healthcheck``: the Workload API agent.

The agent serves the SPIFFE Workload API on a unix socket, with SVIDs from the key store of
``--data-dir`` or from a Strongroom server (``--endpoint``); the health check is its probe.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.context import (
    DataDirOption,
    JsonOption,
    MetricsPortOption,
    cli_errors,
    fail,
    print_json,
)
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice
from strongroom.cli.mesh import (
    LOG_LEVELS,
    TrustDomainOption,
    check_origin,
    open_mesh_ca,
    with_mesh_endpoint,
)
from strongroom.logs import quiet_libraries
from strongroom.ports import SystemClock

if TYPE_CHECKING:
    from strongroom.mesh.agent.ports import EntrySource, WorkloadAuthority
    from strongroom.mesh.agent.workload_api import WorkloadApi
    from strongroom.metrics import MetricsEndpoint


@with_mesh_endpoint
def agent_command(
    socket_path: Annotated[
        Path,
        typer.Option(
            "--socket",
            help="Unix socket to serve the Workload API on (workloads set "
            "SPIFFE_ENDPOINT_SOCKET=unix://PATH).",
            show_default=False,
        ),
    ],
    trust_domain: TrustDomainOption,
    data_dir: DataDirOption = None,
    svid_ttl: Annotated[
        float, typer.Option("--svid-ttl", min=60, help="X.509-SVID lifetime, seconds.")
    ] = 3600.0,
    jwt_ttl: Annotated[
        float, typer.Option("--jwt-ttl", min=60, help="JWT-SVID lifetime, seconds.")
    ] = 300.0,
    log_level: Annotated[str, typer.Option("--log-level", help=", ".join(LOG_LEVELS))] = "info",
    metrics_port: MetricsPortOption = 0,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Serve the SPIFFE Workload API on a unix socket.

    SVIDs come from the key store of --data-dir (in process) or from a Strongroom server
    (--endpoint, an access key created with --mesh-agent), which signs the public keys this
    agent sends: private keys stay here.
    Callers are identified by the kernel (SO_PEERCRED of their connection, /proc/PID/exe)
    and get the SVIDs of the entries whose selectors they all have. Run it as root (or
    with CAP_SYS_PTRACE) for unix:path selectors of other users' processes.
    """
    if log_level not in LOG_LEVELS:
        fail(f"--log-level is one of {', '.join(LOG_LEVELS)}")
    check_origin(data_dir, endpoint)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    quiet_libraries(log_level)
    from strongroom.mesh.agent.schedule import SystemScheduler
    from strongroom.mesh.agent.serve import run_agent
    from strongroom.mesh.agent.workload_api import WorkloadApi
    from strongroom.mesh.identity.registry import Registry

    clock = SystemClock()
    with cli_errors():
        authority: WorkloadAuthority
        entries: EntrySource
        if endpoint.url is not None:
            from strongroom.mesh.agent.remote import RemoteMeshAuthority

            remote = RemoteMeshAuthority.connect(
                trust_domain,
                endpoint_url=endpoint.url,
                region=endpoint.region,
                ca_bundle=endpoint.ca_bundle,
                profile=endpoint.profile,
            )
            authority, entries, close = remote, remote, remote.close
            origin = f" (SVIDs from {endpoint.url})"
        else:
            ca, store = open_mesh_ca(data_dir, trust_domain)
            authority, entries, close, origin = ca, Registry(store, clock), store.close, ""
        try:
            api = WorkloadApi(
                authority,
                entries,
                SystemScheduler(clock),
                svid_ttl_s=svid_ttl,
                jwt_ttl_s=jwt_ttl,
            )
            typer.echo(
                f"SPIFFE Workload API for {authority.trust_domain} on unix://{socket_path}{origin}"
            )
            metrics = _agent_metrics(api, metrics_port) if metrics_port else None
            sys.stdout.flush()
            try:
                status = run_agent(api, socket_path.absolute())
            finally:
                if metrics is not None:
                    metrics.close()
        finally:
            close()
    raise typer.Exit(status)


def healthcheck_command(
    socket_path: Annotated[
        Path,
        typer.Option("--socket", help="The agent's Workload API socket.", show_default=False),
    ],
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the answer.")
    ] = 5.0,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0.0,
            help="Ask again until the agent serves, for up to this many seconds (for "
            "scripts that just started it; 0: ask once).",
        ),
    ] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Check that a Workload API agent is serving (exit 0) or not (exit 1).

    Asks for the X.509 bundles as a workload would: an answer, or "no identity issued" for
    this process, means serving; "Unavailable" means the agent cannot reach its key service.
    """
    import asyncio
    import time

    from strongroom.mesh.agent.health import check_agent

    deadline = time.monotonic() + wait
    while True:
        health = asyncio.run(check_agent(socket_path.absolute(), timeout))
        if health.serving or time.monotonic() >= deadline:
            break
        time.sleep(0.2)  # the agent is starting: its socket appears when it serves
    if as_json:
        print_json({"Serving": health.serving, "Detail": health.detail})
    else:
        typer.echo(f"{'serving' if health.serving else 'NOT serving'}: {health.detail}")
    raise typer.Exit(0 if health.serving else 1)


def _agent_metrics(api: WorkloadApi, port: int) -> MetricsEndpoint:
    from strongroom.mesh.agent.metrics import AgentCollector
    from strongroom.metrics import serve_collector

    endpoint = serve_collector(AgentCollector(api.stats), port)
    typer.echo(f"metrics on http://127.0.0.1:{endpoint.port}/metrics")
    return endpoint


def register_mesh(mesh: typer.Typer) -> None:
    """Add ``agent`` and ``healthcheck`` to the ``strongroom mesh`` sub-app."""
    mesh.command(
        "agent",
        epilog="Examples:  strongroom mesh agent --socket /run/spiffe/agent.sock "
        "--trust-domain example.org   |   strongroom mesh agent --socket "
        "/run/spiffe/agent.sock --trust-domain example.org --endpoint "
        "https://kms.internal:8443 --ca-bundle /etc/strongroom/ca.pem --metrics-port 9902",
    )(agent_command)
    mesh.command(
        "healthcheck",
        epilog="Example:  strongroom mesh healthcheck --socket /run/spiffe/agent.sock "
        "(a liveness probe: exit status 0 when serving)",
    )(healthcheck_command)
