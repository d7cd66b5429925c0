"""``strongroom admin``: tenants and access keys; audit and keystore backups are added here.

Every command opens the service of the data directory for its own duration and closes
it (flushing the audit buffer) before it exits. The secret of a new access key is printed
once, by ``access-key create``, and is kept nowhere else in clear.
"""

from __future__ import annotations

import datetime
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from strongroom.cli import audit, backup
from strongroom.cli.context import (
    DataDirOption,
    JsonOption,
    cli_errors,
    data_dir_of,
    fail,
    print_json,
    service_session,
    stderr_console,
    stdout_console,
)
from strongroom.kms.records import PrincipalRecord, TenantRecord
from strongroom.ports import StoreTx


def iso_time(seconds: float) -> str:
    """Seconds since the epoch as an ISO 8601 UTC timestamp."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="seconds")


def _tenant_json(tenant: TenantRecord) -> dict[str, Any]:
    return {
        "AccountId": tenant.account_id,
        "Name": tenant.name,
        "State": tenant.state,
        "CreationDate": iso_time(tenant.created_at),
    }


def _principal_json(principal: PrincipalRecord) -> dict[str, Any]:
    return {
        "AccessKeyId": principal.access_key_id,
        "AccountId": principal.account_id,
        "UserName": principal.user_name,
        "Arn": principal.arn,
        "Status": principal.status,
        "IsAdmin": principal.is_admin,
        "IsMeshAgent": principal.is_mesh_agent,
        "IsMeshAdmin": principal.is_mesh_admin,
        "CreateDate": iso_time(principal.created_at),
    }


def _table(rows: list[dict[str, Any]], columns: list[str], title: str) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    return table


# -- tenants --------------------------------------------------------------------------------


def tenant_create(
    name: Annotated[str, typer.Argument(help="Tenant name (1-128 characters, unique).")],
    account_id: Annotated[
        str | None,
        typer.Option("--account-id", help="12-digit account id (default: random)."),
    ] = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a tenant with its own key-encryption key."""
    with cli_errors(), service_session(data_dir_of(data_dir)) as service:
        tenant = service.create_tenant(name, account_id)
    info = _tenant_json(tenant)
    if json_output:
        print_json(info)
    else:
        stdout_console().print(f"Created tenant {tenant.name} with account id {tenant.account_id}")


def tenant_list(data_dir: DataDirOption = None, json_output: JsonOption = False) -> None:
    """List every tenant."""
    with cli_errors(), service_session(data_dir_of(data_dir)) as service:
        rows = [_tenant_json(t) for t in service.list_tenants()]
    if json_output:
        print_json({"Tenants": rows})
    else:
        columns = ["AccountId", "Name", "State", "CreationDate"]
        stdout_console().print(_table(rows, columns, f"{len(rows)} tenant(s)"))


# -- access keys ----------------------------------------------------------------------------

TenantOption = Annotated[
    str, typer.Option("--tenant", help="Account id or name of the tenant.", show_default=False)
]


def access_key_create(
    tenant: TenantOption,
    user: Annotated[str, typer.Option("--user", help="User name in the principal ARN.")] = "admin",
    admin: Annotated[
        bool, typer.Option("--admin", help="Mark the principal as a tenant administrator.")
    ] = False,
    mesh_agent: Annotated[
        bool,
        typer.Option(
            "--mesh-agent",
            help="Let the key run `strongroom mesh agent --endpoint`: it may then have "
            "certificates issued for any workload identity of the mesh.",
        ),
    ] = False,
    mesh_admin: Annotated[
        bool,
        typer.Option(
            "--mesh-admin",
            help="Let the key manage the mesh over the API (`strongroom mesh register "
            "--endpoint`, unregister, revoke): who gets which workload identity.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
    dotenv: Annotated[
        bool,
        typer.Option(
            "--dotenv",
            help="Print AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... lines, for "
            "env(1), a systemd EnvironmentFile or kubectl create secret --from-env-file.",
        ),
    ] = False,
) -> None:
    """Create an access key; its secret is printed this once and never again."""
    if json_output and dotenv:
        fail("--json and --dotenv exclude each other")
    with cli_errors(), service_session(data_dir_of(data_dir)) as service:
        account = service.find_tenant(tenant).account_id
        principal, secret = service.create_access_key(
            account, user, is_admin=admin, is_mesh_agent=mesh_agent, is_mesh_admin=mesh_admin
        )
    info = {
        "AccessKeyId": principal.access_key_id,
        "SecretAccessKey": secret,
        "AccountId": principal.account_id,
        "Arn": principal.arn,
    }
    if json_output:
        print_json(info)
        return
    if dotenv:
        sys.stdout.write(
            f"AWS_ACCESS_KEY_ID={info['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY={secret}\n"
        )
        return
    console = stdout_console()
    for name, value in info.items():
        console.print(f"{name:16} {value}")
    stderr_console().print(
        "Store the secret access key now: it cannot be shown again.", style="yellow"
    )


def access_key_list(
    tenant: TenantOption, data_dir: DataDirOption = None, json_output: JsonOption = False
) -> None:
    """List a tenant's access keys (never their secrets)."""
    with cli_errors(), service_session(data_dir_of(data_dir)) as service:
        account = service.find_tenant(tenant).account_id

        def unit(tx: StoreTx) -> list[PrincipalRecord]:
            return [PrincipalRecord.from_bytes(v) for _, v in tx.scan(account, "principal")]

        rows = [_principal_json(p) for p in service.store.read(unit)]
    if json_output:
        print_json({"AccessKeys": rows})
    else:
        columns = [
            "AccessKeyId",
            "UserName",
            "Arn",
            "Status",
            "IsAdmin",
            "IsMeshAgent",
            "IsMeshAdmin",
            "CreateDate",
        ]
        stdout_console().print(_table(rows, columns, f"{len(rows)} access key(s) of {account}"))


def access_key_delete(
    access_key_id: Annotated[str, typer.Argument(help="The access key id to revoke.")],
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke an access key: requests signed with it fail from now on."""
    with cli_errors(), service_session(data_dir_of(data_dir)) as service:
        service.delete_access_key(access_key_id)
    if json_output:
        print_json({"AccessKeyId": access_key_id, "Deleted": True})
    else:
        stdout_console().print(f"Deleted access key {access_key_id}")


def register(app: typer.Typer) -> None:
    """Add ``admin`` and its command groups to the top-level app."""
    tenant = typer.Typer(
        help="Create and list tenants (customers = AWS account ids).",
        epilog="Example:  strongroom admin tenant create acme --json",
        no_args_is_help=True,
    )
    tenant.command("create", epilog="Example:  strongroom admin tenant create acme --json")(
        tenant_create
    )
    tenant.command("list", epilog="Example:  strongroom admin tenant list --json")(tenant_list)
    access_key = typer.Typer(
        help="Create, list and revoke access keys (SigV4 credentials).",
        epilog="Example:  strongroom admin access-key create --tenant acme --user app --json",
        no_args_is_help=True,
    )
    access_key.command(
        "create",
        epilog="Example:  strongroom admin access-key create --tenant acme --user app --json",
    )(access_key_create)
    access_key.command(
        "list", epilog="Example:  strongroom admin access-key list --tenant 111122223333"
    )(access_key_list)
    access_key.command(
        "delete", epilog="Example:  strongroom admin access-key delete AKIAIOSFODNN7EXAMPLE"
    )(access_key_delete)
    admin_app = typer.Typer(
        help="Administer a data directory: tenants, access keys, audit, keystore backups.",
        epilog="Examples:  strongroom admin tenant create acme --json   |   "
        "strongroom admin audit verify --data-dir /var/lib/strongroom",
        no_args_is_help=True,
    )
    admin_app.add_typer(tenant, name="tenant")
    admin_app.add_typer(access_key, name="access-key")
    audit.register(admin_app)
    backup.register(admin_app)
    app.add_typer(admin_app, name="admin")
