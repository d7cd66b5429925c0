"""``strongroom kmip``: the KMIP server, and the client certificates that may use it.

- ``strongroom kmip [--host H] [--port 5696]``: serve KMIP over TLS (client certificates
  required) on the key store of ``--data-dir``;
- ``strongroom kmip client issue --tenant T --name N --out-dir DIR [--kms-key K]``: have
  the instance CA issue a client certificate mapped to tenant T as principal N, with
  ``client.pem``, ``client.key`` and ``ca.pem`` written to DIR;
- ``strongroom kmip client list [--tenant T]`` and ``strongroom kmip client revoke FP``.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.context import (
    DataDirOption,
    JsonOption,
    cli_errors,
    data_dir_of,
    open_root_for,
    open_service,
    open_store_for,
    print_json,
    stdout_console,
)
from strongroom.cli.foreground import serve_until_signal
from strongroom.cli.output import print_rows
from strongroom.ports import SystemClock

kmip_app = typer.Typer(
    help="KMIP server (TLS, client certificates) for databases: MongoDB, MySQL, Percona...",
    invoke_without_command=True,
    no_args_is_help=False,
    epilog="Example:  strongroom kmip --port 5696",
)
client_app = typer.Typer(
    help="Client certificates of the KMIP server.",
    no_args_is_help=True,
    epilog="Example:  strongroom kmip client issue --tenant acme --name app --out-dir ./kmip",
)
kmip_app.add_typer(client_app, name="client")


@kmip_app.callback(
    epilog="Examples:  strongroom kmip --port 5696   |   strongroom kmip client issue "
    "--tenant acme --name mongo-app --out-dir ./kmip-client"
)
def kmip_command(
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (KMIP's is 5696).")] = 5696,
    name: Annotated[
        list[str] | None,
        typer.Option("--name", help="Extra DNS name or IP for the server certificate."),
    ] = None,
    max_connections: Annotated[int, typer.Option(min=1, help="Open connections cap.")] = 256,
    idle_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds a connection may sit idle.")
    ] = 120.0,
) -> None:
    """Serve KMIP 1.0-1.4 and 2.0-2.1 over TLS with client certificates."""
    if ctx.invoked_subcommand is not None:
        return
    from strongroom.kmip.clients import ClientDirectory
    from strongroom.kmip.engine import KmipEngine
    from strongroom.kmip.runtime import AuditFlusher, build_kernel
    from strongroom.kmip.server import KmipServer, Limits, mutual_tls_context
    from strongroom.tls.server_cert import SubjectNames, load_credentials, server_credentials

    directory = data_dir_of(data_dir)
    clock = SystemClock()
    with cli_errors():
        service = open_service(directory)
        store = open_store_for(directory)
        root = open_root_for(directory)
        names = SubjectNames.build([host, *(name or [])])
        credentials = store.write(lambda tx: server_credentials(tx, root, names, clock.now()))
        context = mutual_tls_context(lambda c: load_credentials(c, credentials), credentials.ca_pem)
        write_lock = threading.Lock()  # object writes and audit flushes take turns
        engine = KmipEngine(build_kernel(service, store, clock, write_lock))
        directory_of_clients = ClientDirectory(store, root, clock)
        server = KmipServer(
            engine,
            directory_of_clients.resolve,
            context,
            host,
            port,
            Limits(max_connections=max_connections, idle_timeout_s=idle_timeout),
        )
    flusher = AuditFlusher(service, write_lock=write_lock)
    # the audit flusher's bursts of pure Python must not hold the GIL from the event loop
    # for the default 5 ms (the KMS API's workers do the same)
    sys.setswitchinterval(0.001)

    def start() -> None:
        flusher.start()
        server.start()

    def stop() -> None:
        server.stop()
        flusher.stop()
        service.close()
        store.close()
        root.close()

    serve_until_signal(start, stop, lambda: f"KMIP server listening on {host}:{server.port}")


@client_app.command(
    "issue",
    epilog="Example:  strongroom kmip client issue --tenant acme --name mongo-app "
    "--out-dir ./kmip-client --kms-key alias/mongo",
)
def issue_command(
    tenant: Annotated[str, typer.Option(help="Tenant name or account id.")],
    name: Annotated[str, typer.Option(help="Principal name of the client (e.g. mongo-app).")],
    out_dir: Annotated[Path, typer.Option(help="Directory for client.pem, client.key, ca.pem.")],
    kms_key: Annotated[
        str | None,
        typer.Option(
            help="KMS key sealing this client's objects (default: alias/strongroom-kmip)."
        ),
    ] = None,
    region: Annotated[str, typer.Option(help="Region of the KMS key.")] = "us-east-1",
    days: Annotated[int, typer.Option(min=1, max=3650, help="Validity in days.")] = 365,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Issue a client certificate from the instance CA, mapped to a tenant and principal."""
    from strongroom.kmip.clients import issue_client
    from strongroom.kmip.context import KmipClient
    from strongroom.kmip.runtime import ensure_kms_key

    directory = data_dir_of(data_dir)
    with cli_errors():
        service = open_service(directory)
        try:
            account = service.find_tenant(tenant).account_id
            probe = KmipClient(account, name, "", region)
            key_arn = ensure_kms_key(service, probe.caller, kms_key, "kmip")
            issued = issue_client(
                open_store_for(directory),
                open_root_for(directory),
                SystemClock(),
                KmipClient(account, name, key_arn, region),
                days,
            )
        finally:
            service.close()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "client.pem").write_bytes(issued.certificate_pem)
        (out_dir / "ca.pem").write_bytes(issued.ca_pem)
        key_path = out_dir / "client.key"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(issued.key_pem)
    summary = {
        "tenant": account,
        "principal": name,
        "fingerprint": issued.client.fingerprint,
        "kmsKey": key_arn,
        "certificate": str(out_dir / "client.pem"),
        "key": str(key_path),
        "ca": str(out_dir / "ca.pem"),
    }
    if json_output:
        print_json(summary)
        return
    console = stdout_console()
    for field, value in summary.items():
        console.print(f"{field}: {value}")


@client_app.command("list", epilog="Example:  strongroom kmip client list --tenant acme --json")
def list_command(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's clients.")] = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the clients mapped to tenants."""
    from strongroom.kmip.clients import list_clients

    directory = data_dir_of(data_dir)
    with cli_errors():
        account = None
        if tenant is not None:
            service = open_service(directory)
            try:
                account = service.find_tenant(tenant).account_id
            finally:
                service.close()
        clients = list_clients(open_store_for(directory), open_root_for(directory), account)
    rows = [
        {
            "tenant": c.tenant,
            "principal": c.principal,
            "fingerprint": c.fingerprint,
            "kmsKey": c.kms_key,
        }
        for c in clients
    ]
    print_rows(rows, json_output, ("fingerprint", "tenant", "principal", "kmsKey"))


@client_app.command("revoke", epilog="Example:  strongroom kmip client revoke 3f1c...e9")
def revoke_command(
    fingerprint: Annotated[str, typer.Argument(help="SHA-256 fingerprint from `client list`.")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a client: its certificate is refused within seconds."""
    from strongroom.kmip.clients import revoke_client

    with cli_errors():
        revoke_client(open_store_for(data_dir_of(data_dir)), fingerprint)
    stdout_console().print(f"revoked {fingerprint}")


def register(app: typer.Typer) -> None:
    """Add ``kmip`` to the top-level app."""
    app.add_typer(kmip_app, name="kmip")
