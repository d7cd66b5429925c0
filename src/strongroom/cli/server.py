"""``strongroom server``: serve the AWS KMS API over HTTPS from a data directory.

The listening socket is bound first (a busy port fails at once), then the data directory
is prepared (:mod:`strongroom.cli.server_bootstrap`), then the workers serve until SIGTERM
or SIGINT, which they answer by finishing the requests in flight.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.context import (
    STORE_ENV,
    DataDirOption,
    cli_errors,
    data_dir_of,
    fail,
    shown_root,
    shown_store_url,
    store_option,
)
from strongroom.cli.env import CREDENTIALS_FILE, env_command_line
from strongroom.cli.server_bootstrap import Prepared, prepare_data_dir
from strongroom.server import ServerSettings, bind_listener, serve
from strongroom.server.guard import (
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_CLIENT,
    REQUEST_TIMEOUT_SECONDS,
    ConnectionLimits,
)
from strongroom.server.settings import DEFAULT_HOST, DEFAULT_PORT, MAX_PENDING
from strongroom.server.worker import configure_logging


def _announce(settings: ServerSettings, prepared: Prepared, endpoint: str) -> None:
    """Say what is served where (one line each, unwrapped: this ends up in logs)."""
    lines = []
    if prepared.initialised:
        lines.append(f"Initialised data directory {prepared.data_dir}")
    workers = f"{settings.workers} worker{'s' if settings.workers != 1 else ''}"
    lines.append(f"Strongroom server on {endpoint} ({workers})")
    lines.append(f"  key store          {shown_store_url(prepared.config.store_url)}")
    lines.append(f"  root of trust      {shown_root(prepared.config.root_of_trust)}")
    if settings.uses_instance_ca:
        lines.append(f"  CA bundle          {prepared.ca_file}")
    elif settings.tls_cert is not None:
        lines.append(f"  certificate        {settings.tls_cert} (the operator's)")
    for line in lines:
        typer.echo(line)
    if prepared.credentials_file is not None:
        note = " (created now, mode 0600: keep it safe)" if prepared.credentials_created else ""
        typer.secho(
            f"  admin credentials  {prepared.credentials_file}{note}",
            bold=prepared.credentials_created,
        )
    if prepared.lock is None:
        typer.echo(
            f"  note: {prepared.other_server} already serves this data directory; "
            f"{CREDENTIALS_FILE} keeps pointing at it. Clients of this server: "
            f"--endpoint {endpoint} (or AWS_ENDPOINT_URL_KMS={endpoint})."
        )
    elif prepared.credentials_file is not None:
        typer.echo(f"Clients: in another shell, {env_command_line(prepared.data_dir)}")
    if prepared.audit_accepted is not None:
        typer.secho(
            f"WARNING: --accept-audit-rollback: accepted the audit log as it is "
            f"({prepared.audit_accepted}); recorded in the audit log.",
            fg="yellow",
            err=True,
        )
    if settings.audit_fail_open:
        typer.secho(
            "WARNING: --audit-failure open: operations go on when the audit log cannot be "
            "written; events past the backlog are dropped.",
            fg="yellow",
            err=True,
        )
    typer.echo(f"Stop: Ctrl-C here, or kill {os.getpid()} (requests in flight finish first).")
    if settings.insecure_http:
        typer.secho(
            "WARNING: --insecure-http: serving PLAIN HTTP. Secrets, plaintexts and data keys "
            "cross the network unencrypted. For local development only.",
            fg="red",
            bold=True,
            err=True,
        )
    sys.stdout.flush()


def _bind(host: str, port: int, data_dir: Path) -> socket.socket:
    """The listening socket; a busy address fails naming it and the ways out."""
    try:
        return bind_listener(host, port)
    except OSError as exc:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"{shown} is already in use, perhaps by a server already running on "
                f"{data_dir} ({env_command_line(data_dir)} points clients at it). Stop that "
                f"one, or listen elsewhere with --port PORT (--port 0: any free port)."
            )
        if exc.errno == errno.EACCES:
            fail(f"no permission to listen on {shown}: use a --port above 1023, or run as root.")
        if exc.errno == errno.EADDRNOTAVAIL:
            fail(f"{host} is no address of this machine: give --host one that is (or 0.0.0.0).")
        fail(f"cannot listen on {shown}: {exc.strerror or exc}")


def server_command(
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port to listen on.")
    ] = DEFAULT_PORT,
    insecure_http: Annotated[
        bool,
        typer.Option("--insecure-http", help="Serve plain HTTP (local development only)."),
    ] = False,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar=STORE_ENV,
            help="Key store URL for a new data directory (default: SQLite in the data "
            "directory; postgresql://user@host/db to scale out).",
            show_default=False,
        ),
    ] = None,
    root_of_trust: Annotated[
        str | None,
        typer.Option(
            "--root-of-trust",
            help="Root of trust for a new data directory: 'local' (default) or a PKCS#11 URI.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Region written to admin-credentials.json (default us-east-1); the server "
            "answers in every region.",
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="Serve this PEM certificate chain instead of the CA's."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The PEM private key of --tls-cert.")
    ] = None,
    tls_san: Annotated[
        list[str] | None,
        typer.Option(
            "--tls-san",
            help="Extra DNS name or IP address for the server certificate (repeatable).",
        ),
    ] = None,
    tls_from_mesh: Annotated[
        bool,
        typer.Option(
            "--tls-from-mesh",
            help="Take the certificate from the mesh CA of --trust-domain (SPIFFE ID "
            "spiffe://TD/strongroom/server; clients trust DATA_DIR/mesh-TD.pem).",
        ),
    ] = False,
    trust_domain: Annotated[
        str | None,
        typer.Option(
            "--trust-domain", help="The SPIFFE trust domain of --tls-from-mesh.", show_default=False
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log one JSON line per API request.")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    request_timeout: Annotated[
        float,
        typer.Option(
            "--request-timeout",
            min=0.1,
            help="Seconds a connection has to send a whole request (head and body).",
        ),
    ] = REQUEST_TIMEOUT_SECONDS,
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", min=1, help="Open connections per worker."),
    ] = MAX_CONNECTIONS,
    max_connections_per_client: Annotated[
        int,
        typer.Option(
            "--max-connections-per-client",
            min=1,
            help="Open connections per worker from one client address.",
        ),
    ] = MAX_CONNECTIONS_PER_CLIENT,
    audit_failure: Annotated[
        str,
        typer.Option(
            "--audit-failure",
            help="When the audit log cannot be written: 'closed' refuses operations once "
            "--audit-backlog events wait (DependencyTimeoutException, /readyz 503); 'open' "
            "serves on and drops events past the backlog.",
        ),
    ] = "closed",
    audit_backlog: Annotated[
        int,
        typer.Option(
            "--audit-backlog", min=1, help="Audit events per worker that may wait unwritten."
        ),
    ] = MAX_PENDING,
    accept_audit_rollback: Annotated[
        bool,
        typer.Option(
            "--accept-audit-rollback",
            help="Start even though the audit log is behind (or differs from) its last signed "
            "checkpoint: record that in the audit log and checkpoint the current head.",
        ),
    ] = False,
) -> None:
    """Serve the AWS KMS API (HTTPS, SigV4) from a data directory, initialising it first.

    On first start with an empty or missing data directory this initialises it, creates
    the admin tenant and credentials (DATA_DIR/admin-credentials.json, mode 0600) and the
    instance CA (its certificate in DATA_DIR/ca.pem: clients pass it as their CA bundle).
    """
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    if insecure_http and tls_cert is not None:
        fail("--insecure-http serves no certificate: drop --tls-cert/--tls-key")
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        fail("--log-level must be debug, info, warning or error")
    if audit_failure not in ("closed", "open"):
        fail("--audit-failure must be 'closed' (the default) or 'open'")
    sans = list(tls_san or ())
    if any(s.strip().startswith("spiffe://") for s in sans):
        fail("a SPIFFE ID is not a --tls-san: use --tls-from-mesh --trust-domain TD")
    if trust_domain is not None and not tls_from_mesh:
        fail("--trust-domain goes with --tls-from-mesh")
    if tls_from_mesh:
        if trust_domain is None:
            fail("--tls-from-mesh needs --trust-domain")
        if insecure_http or tls_cert is not None:
            fail(
                "--tls-from-mesh serves the mesh CA's certificate: drop --insecure-http/--tls-cert"
            )
        from strongroom.mesh.identity.ingress import server_spiffe_id

        with cli_errors():
            sans.append(server_spiffe_id(trust_domain))
    store = store_option(store)
    directory = data_dir_of(data_dir)
    sock = _bind(host, port, directory)
    try:
        bound_port = int(sock.getsockname()[1])
        draft = ServerSettings(
            data_dir=directory,
            store_url="",
            root_spec="",
            host=host,
            port=bound_port,
            workers=workers,
            insecure_http=insecure_http,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
        endpoint = draft.endpoint(bound_port)
        # before the start check, whose checkpoint goes to the log as a JSON line too
        configure_logging(log_level.lower(), access_log)
        with cli_errors():
            prepared = prepare_data_dir(
                directory,
                store_url=store,
                root_spec=root_of_trust,
                region=region,
                endpoint=endpoint,
                serves_instance_ca=draft.uses_instance_ca,
                mesh_trust_domain=trust_domain if tls_from_mesh else None,
                accept_audit_rollback=accept_audit_rollback,
            )
        settings = ServerSettings(
            data_dir=prepared.data_dir,
            store_url=prepared.config.store_url,
            root_spec=prepared.config.root_of_trust,
            host=host,
            port=bound_port,
            workers=workers,
            insecure_http=insecure_http,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_sans=tuple(sans),
            access_log=access_log,
            log_level=log_level.lower(),
            limits=ConnectionLimits(
                request_timeout=request_timeout,
                handshake_timeout=max(request_timeout, 1.0),
                max_connections=max_connections,
                max_per_client=min(max_connections_per_client, max_connections),
            ),
            audit_fail_open=audit_failure == "open",
            audit_backlog=audit_backlog,
        )
        _announce(settings, prepared, endpoint)
    except BaseException:
        sock.close()
        raise
    with cli_errors():
        status = serve(settings, sock)
    raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    """Add ``server`` to the top-level app."""
    app.command(
        "server",
        epilog="Examples:  strongroom server   |   strongroom server --data-dir /var/lib/"
        "strongroom --host 0.0.0.0 --workers 2   |   strongroom server --store "
        "postgresql://kms@db/kms --root-of-trust 'pkcs11:token=prod;object=root"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so'",
    )(server_command)
