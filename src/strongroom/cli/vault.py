"""``strongroom vault``: a Vault-compatible key API (KV v2, transit) over HTTPS.

- ``strongroom vault [--host H] [--port 8200]``: serve it on the key store of ``--data-dir``;
- ``strongroom vault mount add NAME --tenant T [--type kv|transit] [--kms-key K]``;
- ``strongroom vault token create --tenant T --mount NAME [--name N]`` (printed once),
  ``token list``, ``token revoke ACCESSOR``;
- ``strongroom vault kv new-key --tenant T --mount NAME PATH``: a new version holding a
  fresh 256-bit key as hex in field ``data`` (MariaDB's layout; run again to rotate);
- ``strongroom vault kv retire --tenant T --mount NAME PATH --version N``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
from strongroom.kms.caller import Caller
from strongroom.ports import SystemClock

if TYPE_CHECKING:
    from strongroom.kms import KeyService
    from strongroom.vault.service import VaultFrontEnd

vault_app = typer.Typer(
    help="Vault-compatible key API (KV v2, transit) for databases: MariaDB...",
    invoke_without_command=True,
    epilog="Example:  strongroom vault --port 8200",
)
mount_app = typer.Typer(
    help="Mounts (kv or transit) of tenants.",
    no_args_is_help=True,
    epilog="Example:  strongroom vault mount add mariadb --tenant acme",
)
token_app = typer.Typer(
    help="Tokens, each bound to a tenant and a mount.",
    no_args_is_help=True,
    epilog="Example:  strongroom vault token create --tenant acme --mount mariadb",
)
kv_app = typer.Typer(
    help="Versioned keys in KV v2 mounts.",
    no_args_is_help=True,
    epilog="Example:  strongroom vault kv new-key --tenant acme --mount mariadb 1",
)
vault_app.add_typer(mount_app, name="mount")
vault_app.add_typer(token_app, name="token")
vault_app.add_typer(kv_app, name="kv")

TenantOption = Annotated[str, typer.Option(help="Tenant name or account id.")]
MountOption = Annotated[str, typer.Option(help="Mount name (e.g. mariadb).")]


@contextmanager
def _front(data_dir: Path | None) -> Iterator[tuple[KeyService, VaultFrontEnd]]:
    from strongroom.vault.runtime import build_front_end

    directory = data_dir_of(data_dir)
    service = open_service(directory)
    store = open_store_for(directory)
    root = open_root_for(directory)
    try:
        yield service, build_front_end(service, store, root, SystemClock())
    finally:
        service.close()
        store.close()
        root.close()


def _caller(service: KeyService, tenant: str) -> tuple[str, Caller]:
    account = service.find_tenant(tenant).account_id
    return account, Caller(account, f"arn:aws:iam::{account}:user/vault/admin")


@vault_app.callback(
    epilog="Examples:  strongroom vault --port 8200   |   strongroom vault mount add mariadb "
    "--tenant acme   |   strongroom vault token create --tenant acme --mount mariadb"
)
def vault_command(
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (Vault's is 8200).")] = 8200,
    name: Annotated[
        list[str] | None, typer.Option("--name", help="Extra DNS name or IP for the certificate.")
    ] = None,
    max_connections: Annotated[int, typer.Option(min=1, help="Open connections cap.")] = 256,
) -> None:
    """Serve the Vault-compatible API over HTTPS (certificate from the instance CA)."""
    if ctx.invoked_subcommand is not None:
        return
    from strongroom.kmip.runtime import AuditFlusher
    from strongroom.vault.runtime import https_server

    with cli_errors(), _front(data_dir) as (service, front):
        server, _ = https_server(front, host, port, name, max_connections)
        flusher = AuditFlusher(service)

        def start() -> None:
            flusher.start()
            server.start()

        def stop() -> None:
            server.shutdown()
            flusher.stop()

        serve_until_signal(
            start, stop, lambda: f"Vault API listening on https://{host}:{server.port}"
        )


@mount_app.command("add", epilog="Example:  strongroom vault mount add mariadb --tenant acme")
def mount_add(
    mount: Annotated[str, typer.Argument(help="Mount name.")],
    tenant: TenantOption,
    type_: Annotated[str, typer.Option("--type", help="kv or transit.")] = "kv",
    kms_key: Annotated[
        str | None, typer.Option(help="KMS key sealing it (default: alias/strongroom-vault).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a mount to a tenant, sealed under one of the tenant's KMS keys."""
    from strongroom.kmip.runtime import ensure_kms_key
    from strongroom.vault import records

    with cli_errors(), _front(data_dir) as (service, front):
        account, caller = _caller(service, tenant)
        arn = ensure_kms_key(service, caller, kms_key, "vault")
        front.store.write(
            lambda tx: records.add_mount(tx, account, records.Mount(mount, type_, arn))
        )
    stdout_console().print(f"mount {mount} ({type_}) of {account}, sealed under {arn}")


@token_app.command(
    "create", epilog="Example:  strongroom vault token create --tenant acme --mount mariadb"
)
def token_create(
    tenant: TenantOption,
    mount: MountOption,
    name: Annotated[str, typer.Option(help="A name for the token's holder.")] = "app",
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a token for one mount of one tenant; it is printed once, never stored."""
    from strongroom.vault import records

    with cli_errors(), _front(data_dir) as (service, front):
        account, _ = _caller(service, tenant)
        token, info = front.store.write(
            lambda tx: records.new_token(tx, front.root, account, mount, name)
        )
    if json_output:
        print_json({"token": token, "accessor": info.accessor, "tenant": account, "mount": mount})
        return
    stdout_console().print(f"token: {token}\naccessor: {info.accessor}")


@token_app.command("list", epilog="Example:  strongroom vault token list --json")
def token_list(data_dir: DataDirOption = None, json_output: JsonOption = False) -> None:
    """List tokens by accessor (the tokens themselves are not stored)."""
    from strongroom.vault import records

    with cli_errors(), _front(data_dir) as (_, front):
        infos = front.store.read(lambda tx: records.list_tokens(tx, front.root))
    rows = [
        {"accessor": i.accessor, "tenant": i.tenant, "mount": i.mount, "name": i.name}
        for i in infos
    ]
    print_rows(rows, json_output, ("accessor", "tenant", "mount", "name"))


@token_app.command(
    "revoke", epilog="Example:  strongroom vault token revoke 3f1c0a9d2e4b5c6d7e8f9a0b"
)
def token_revoke(
    accessor: Annotated[str, typer.Argument(help="The token's accessor.")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a token: the next request with it is refused."""
    from strongroom.vault import records

    with cli_errors(), _front(data_dir) as (_, front):
        front.store.write(lambda tx: records.revoke_token(tx, accessor))
    stdout_console().print(f"revoked {accessor}")


@kv_app.command(
    "new-key", epilog="Example:  strongroom vault kv new-key --tenant acme --mount mariadb 1"
)
def kv_new_key(
    path: Annotated[str, typer.Argument(help="Secret path (MariaDB: the key id, e.g. 1).")],
    tenant: TenantOption,
    mount: MountOption,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a version holding a fresh 256-bit key (hex, field ``data``): creation and rotation."""
    with cli_errors(), _front(data_dir) as (service, front):
        account, caller = _caller(service, tenant)
        version = front.kv_write(account, caller, mount, path, {"data": secrets.token_hex(32)})
    if json_output:
        print_json({"mount": mount, "path": path, "version": version})
        return
    stdout_console().print(f"{mount}/{path}: version {version}")


@kv_app.command(
    "retire",
    epilog="Example:  strongroom vault kv retire --tenant acme --mount mariadb 1 --version 1",
)
def kv_retire(
    path: Annotated[str, typer.Argument(help="Secret path.")],
    tenant: TenantOption,
    mount: MountOption,
    version: Annotated[int, typer.Option(min=1, help="The version to destroy.")],
    data_dir: DataDirOption = None,
) -> None:
    """Destroy one old version of a key for good."""
    with cli_errors(), _front(data_dir) as (service, front):
        account, _ = _caller(service, tenant)
        front.kv_retire(account, mount, path, version)
    stdout_console().print(f"{mount}/{path}: version {version} retired")


def register(app: typer.Typer) -> None:
    """Add ``vault`` to the top-level app."""
    app.add_typer(vault_app, name="vault")
