"""``strongroom objects put|get|ls|rm``: encrypted objects in a directory or an S3 bucket.

Objects belong to a tenant namespace (``--tenant``, by default the account id of the KMS
credentials, from ``sts:GetCallerIdentity``); see :mod:`strongroom.data.objects`. Output
files appear only complete, as for ``strongroom decrypt``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from strongroom.cli.common import cli_errors, print_json
from strongroom.cli.data import (
    COPY_BYTES,
    ContextOption,
    KeyOption,
    counted_input,
    open_output,
    parse_context,
    progress_for,
    with_kms_endpoint,
)
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice
from strongroom.cli.object_store import NO_STORE, StoreChoice, object_store, with_store
from strongroom.errors import ValidationError

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="Encrypt for this end user: under their user key (a Strongroom server's user "
        "keys), so destroying that key makes the object unreadable.",
        show_default=False,
    ),
]


@with_kms_endpoint
@with_store
def objects_put(
    name: Annotated[str, typer.Argument(help="Object name, e.g. reports/2024/q1.pdf.")],
    source: Annotated[str, typer.Argument(help="File to store, or - for stdin.")],
    key: KeyOption,
    context: ContextOption = None,
    user: UserOption = None,
    create_user_key: Annotated[
        bool,
        typer.Option(
            "--create-user-key",
            help="With --user: create the user's key if they have none (never created, or "
            "destroyed). Without it, such a user is refused.",
        ),
    ] = False,
    where: StoreChoice = NO_STORE,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Encrypt a file into the store as NAME (replacing an object of that name)."""
    with cli_errors():
        entries = parse_context(context)
        if create_user_key and user is None:
            raise ValidationError("--create-user-key goes with --user.")
        with (
            object_store(where, endpoint, key, user, create_user_key) as store,
            counted_input(source, "", "storing") as src,
        ):
            store.put(name, src, entries)


@with_kms_endpoint
@with_store
def objects_get(
    name: Annotated[str, typer.Argument(help="Object name.")],
    dest: Annotated[str, typer.Argument(help="File to write, or - for stdout.")] = "-",
    offset: Annotated[int, typer.Option("--offset", help="First byte to read.")] = 0,
    length: Annotated[
        int | None,
        typer.Option("--length", help="Bytes to read (default: to the end).", show_default=False),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", help="Require exactly this context: KEY=VALUE."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Read only an object of this end user (a destroyed user key says so).",
            show_default=False,
        ),
    ] = None,
    where: StoreChoice = NO_STORE,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Decrypt object NAME (or a byte range of it) to a file or stdout."""
    with cli_errors():
        expected = parse_context(context) if context else None
        if offset < 0 or (length is not None and length < 0):
            raise ValidationError("--offset and --length cannot be negative.")
        with (
            object_store(where, endpoint, user=user) as store,
            store.open(name, context=expected) as reader,
        ):
            reader.seek(offset)
            left = max(reader.size - offset, 0) if length is None else length
            with progress_for(left, dest, "reading") as bar, open_output(dest) as sink:
                task = None if bar is None else bar.add_task("", total=left)
                while left > 0 or length is None:
                    data = reader.read(COPY_BYTES if length is None else min(left, COPY_BYTES))
                    if not data:
                        break
                    sink.write(data)
                    left -= len(data)
                    if bar is not None and task is not None:
                        bar.advance(task, len(data))


@with_kms_endpoint
@with_store
def objects_ls(
    prefix: Annotated[str, typer.Argument(help="List names starting with this.")] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
    where: StoreChoice = NO_STORE,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """List object names (sorted)."""
    with cli_errors(), object_store(where, endpoint) as store:
        names = store.list(prefix)
    if json_output:
        print_json({"Tenant": store.tenant, "Objects": names})
    else:
        sys.stdout.write("".join(f"{name}\n" for name in names))


@with_kms_endpoint
@with_store
def objects_rm(
    names: Annotated[list[str], typer.Argument(help="Object names.")],
    where: StoreChoice = NO_STORE,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Delete objects (an unknown name is an error)."""
    with cli_errors(), object_store(where, endpoint) as store:
        for name in names:
            store.delete(name)


def register_objects(app: typer.Typer) -> None:
    """Add the ``objects`` group to the top-level app."""
    objects = typer.Typer(
        help="Encrypted objects of one tenant in a local directory or an S3 bucket.",
        no_args_is_help=True,
        epilog="Examples:  strongroom objects put --dir /srv/obj -k alias/obj q1.pdf ./q1.pdf   |"
        "   strongroom objects ls --s3-bucket my-objects --s3-endpoint http://127.0.0.1:9000",
    )
    objects.command(
        "put",
        epilog="Examples:  strongroom objects put --dir /srv/obj -k alias/obj q1.pdf ./q1.pdf   |"
        "   strongroom objects put --dir /srv/obj -k alias/users --user u-42 --create-user-key "
        "u-42/cv.pdf cv.pdf",
    )(objects_put)
    objects.command(
        "get",
        epilog="Example:  strongroom objects get --s3-bucket my-objects --offset 1024 q1.pdf -",
    )(objects_get)
    objects.command("ls", epilog="Example:  strongroom objects ls --dir /srv/obj reports/")(
        objects_ls
    )
    objects.command("rm", epilog="Example:  strongroom objects rm --dir /srv/obj q1.pdf")(
        objects_rm
    )
    app.add_typer(objects, name="objects")


register = register_objects
"""``register(app)`` as every command module has (``strongroom.cli.main``)."""
