"""``strongroom mesh ...``: workload identities (SPIFFE) for encryption in transit.

Commands of the ``mesh`` sub-app:

- ``register --spiffe-id ID --selector unix:uid:N [--selector ...]``, ``entries``,
  ``unregister ENTRY_ID``: the registration entries;
- ``revoke --spiffe-id ID``: revoke an identity for good; ``revoked``: list them;
- ``bundle --trust-domain TD [--format pem|spiffe]``: the trust bundle;

  each on the key store of ``--data-dir`` or, with ``--endpoint URL``, on a Strongroom
  server (:mod:`strongroom.mesh.admin`);
- ``agent --socket PATH --trust-domain TD [--endpoint URL]``: serve the SPIFFE Workload
  API, with SVIDs from the key store or from a Strongroom server.

Adding commands (``mesh proxy``, ``mesh egress``...): write a module with
``register_mesh(mesh: typer.Typer) -> None`` that calls ``mesh.command("proxy")(...)``, and
add its name to :data:`MESH_COMMAND_MODULES` below (one line). Keep heavy imports (grpclib,
uvloop, protobuf) inside the command functions, as ``agent`` does, so ``strongroom --help``
stays fast.
"""

from __future__ import annotations

import importlib
import json
import sys
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
    fail,
    open_root_for,
    open_store_for,
    print_json,
    stdout_console,
)
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice, endpoint_options
from strongroom.ports import Store, SystemClock

if TYPE_CHECKING:
    from strongroom.mesh.admin import MeshAdministration
    from strongroom.mesh.identity.ca import MeshCA

MESH_COMMAND_MODULES: tuple[str, ...] = ("strongroom.cli.mesh_agent", "strongroom.cli.mesh_proxy")
"""Modules whose ``register_mesh(mesh)`` adds more ``strongroom mesh`` commands."""

TrustDomainOption = Annotated[
    str,
    typer.Option(
        "--trust-domain",
        envvar="STRONGROOM_TRUST_DOMAIN",
        show_envvar=True,
        help="The SPIFFE trust domain, e.g. example.org.",
        show_default=False,
    ),
]
LOG_LEVELS = ("debug", "info", "warning", "error")
"""The ``--log-level`` values of the mesh commands."""


def open_mesh_ca(data_dir: Path | None, trust_domain: str) -> tuple[MeshCA, Store]:
    """The trust domain's CA (created on first use) and the store to close afterwards."""
    from strongroom.mesh.identity.ca import MeshCA

    directory = data_dir_of(data_dir)
    store = open_store_for(directory)
    try:
        root = open_root_for(directory)
        return MeshCA.create(trust_domain, store, root, SystemClock()), store
    except BaseException:
        store.close()
        raise


MESH_ENDPOINT_HELP = (
    "A Strongroom server (https://HOST:PORT) to work on instead of the key store of "
    "--data-dir; requests are signed with the AWS credential chain's access key, created "
    "with --mesh-admin (the agent's with --mesh-agent)."
)
with_mesh_endpoint = endpoint_options(MESH_ENDPOINT_HELP)


def check_origin(data_dir: Path | None, endpoint: EndpointChoice) -> None:
    """Fail (exit 1) unless the mesh is named by ``--data-dir`` or ``--endpoint``, not both."""
    endpoint.require_url_for_the_rest()
    if endpoint.url is not None and data_dir is not None:
        fail("--data-dir and --endpoint exclude each other: the mesh is managed on one of them")


@contextmanager
def _administration(
    data_dir: Path | None, endpoint: EndpointChoice
) -> Iterator[MeshAdministration]:
    """The mesh of ``--data-dir`` or of the server at ``--endpoint`` (closed afterwards)."""
    check_origin(data_dir, endpoint)
    from strongroom.mesh.admin import LocalMeshAdmin, RemoteMeshAdmin

    admin: MeshAdministration
    with cli_errors():
        if endpoint.url is not None:
            admin = RemoteMeshAdmin.connect(
                endpoint_url=endpoint.url,
                region=endpoint.region,
                ca_bundle=endpoint.ca_bundle,
                profile=endpoint.profile,
            )
        else:
            directory = data_dir_of(data_dir)
            admin = LocalMeshAdmin(
                open_store_for(directory), lambda: open_root_for(directory), SystemClock()
            )
        try:
            yield admin
        finally:
            admin.close()


@with_mesh_endpoint
def register_command(
    spiffe_id: Annotated[
        str, typer.Option("--spiffe-id", help="spiffe://TD/path to hand out.", show_default=False)
    ],
    selector: Annotated[
        list[str],
        typer.Option(
            "--selector",
            help="unix:uid:N, unix:gid:N, unix:user:NAME, unix:group:NAME or "
            "unix:path:/abs/bin (repeatable; a workload needs ALL of them).",
            show_default=False,
        ),
    ],
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            help="Only the mesh agent whose access key has this user name may have the "
            "identity issued (default: any agent).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Register a workload: who (selectors, on which node) gets which SPIFFE ID.

    On --data-dir, or with --endpoint on a Strongroom server (an access key created with
    --mesh-admin). spiffe://TD/strongroom/... is reserved for the key server.
    """
    with _administration(data_dir, endpoint) as admin:
        entry = admin.register(spiffe_id, selector, node)
    if as_json:
        print_json(entry.to_json())
    else:
        typer.echo(f"{entry.entry_id}  {entry.spiffe_id}  {' '.join(map(str, entry.selectors))}")


@with_mesh_endpoint
def entries_command(
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
    trust_domain: Annotated[
        str | None,
        typer.Option(
            "--trust-domain", help="Only this trust domain's entries.", show_default=False
        ),
    ] = None,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """List the registration entries."""
    from rich.table import Table

    with _administration(data_dir, endpoint) as admin:
        found = admin.entries(trust_domain)
    if as_json:
        print_json([e.to_json() for e in found])
        return
    table = Table("Entry id", "SPIFFE ID", "Selectors", "Node")
    for entry in found:
        table.add_row(
            entry.entry_id,
            str(entry.spiffe_id),
            " ".join(map(str, entry.selectors)),
            entry.node or "any",
        )
    stdout_console().print(table)


@with_mesh_endpoint
def unregister_command(
    entry_id: Annotated[str, typer.Argument(help="The entry id (see `strongroom mesh entries`).")],
    data_dir: DataDirOption = None,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Delete a registration entry (its workloads get no new SVIDs from then on)."""
    with _administration(data_dir, endpoint) as admin:
        entry = admin.unregister(entry_id)
    typer.echo(f"unregistered {entry.entry_id} ({entry.spiffe_id})")


@with_mesh_endpoint
def revoke_command(
    spiffe_id: Annotated[
        str, typer.Option("--spiffe-id", help="The identity to revoke.", show_default=False)
    ],
    data_dir: DataDirOption = None,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Revoke an identity for good: no new SVIDs, and its certificates are refused."""
    with _administration(data_dir, endpoint) as admin:
        added = admin.revoke(spiffe_id)
    typer.echo(f"revoked {spiffe_id}" if added else f"{spiffe_id} was revoked already")


@with_mesh_endpoint
def revoked_command(
    trust_domain: TrustDomainOption,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """List the revoked identities of a trust domain."""
    with _administration(data_dir, endpoint) as admin:
        found = admin.revoked(trust_domain)
    if as_json:
        print_json(found)
    else:
        for name in found:
            typer.echo(name)


@with_mesh_endpoint
def bundle_command(
    trust_domain: TrustDomainOption,
    data_dir: DataDirOption = None,
    output_format: Annotated[
        str,
        typer.Option("--format", help="pem (CA certificates) or spiffe (JWK Set)."),
    ] = "pem",
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Print the trust bundle of a trust domain (creating its CA on first use)."""
    if output_format not in ("pem", "spiffe"):
        fail("--format is pem or spiffe")
    with _administration(data_dir, endpoint) as admin:
        if output_format == "pem":
            text = admin.bundle_pem(trust_domain).decode("ascii")
        else:
            text = json.dumps(admin.spiffe_bundle(trust_domain), indent=2) + "\n"
    sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    """Add the ``mesh`` sub-app to the top-level app."""
    mesh = typer.Typer(
        name="mesh",
        help="Workload identities (SPIFFE): registration, trust bundles, the Workload API, "
        "mTLS sidecars and TLS-only egress.",
        epilog="Examples:  strongroom mesh register --spiffe-id spiffe://example.org/web "
        "--selector unix:uid:1000   |   strongroom mesh agent --socket "
        "/run/spiffe/agent.sock --trust-domain example.org   |   strongroom mesh proxy "
        "--config /etc/strongroom/sidecar.yaml",
        no_args_is_help=True,
    )
    mesh.command(
        "register",
        epilog="Examples:  strongroom mesh register --spiffe-id spiffe://example.org/web "
        "--selector unix:uid:1000 --selector unix:path:/usr/bin/web   |   strongroom mesh "
        "register --endpoint https://kms.internal:8443 --ca-bundle ca.pem --spiffe-id "
        "spiffe://example.org/api --selector unix:uid:1001",
    )(register_command)
    mesh.command("entries", epilog="Example:  strongroom mesh entries --json")(entries_command)
    mesh.command(
        "unregister",
        epilog="Example:  strongroom mesh unregister 3f2c9d0e8b7a4c1d9e6f5a4b3c2d1e0f",
    )(unregister_command)
    mesh.command(
        "revoke", epilog="Example:  strongroom mesh revoke --spiffe-id spiffe://example.org/web"
    )(revoke_command)
    mesh.command(
        "revoked", epilog="Example:  strongroom mesh revoked --trust-domain example.org --json"
    )(revoked_command)
    mesh.command(
        "bundle",
        epilog="Examples:  strongroom mesh bundle --trust-domain example.org > bundle.pem   |   "
        "strongroom mesh bundle --trust-domain example.org --format spiffe",
    )(bundle_command)
    for name in MESH_COMMAND_MODULES:
        importlib.import_module(name).register_mesh(mesh)
    app.add_typer(mesh, name="mesh")
