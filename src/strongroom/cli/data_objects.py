"""``strongroom objects put|get|ls|rm``: encrypted objects in a directory or an S3 bucket.

Objects belong to a tenant namespace (``--tenant``, by default the account id of the KMS
credentials, from ``sts:GetCallerIdentity``); see :mod:`strongroom.data.objects`. Output
files appear only complete, as for ``strongroom decrypt``.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import cli_errors, fail, print_json
from strongroom.cli.data import (
    COPY_BYTES,
    ContextOption,
    KeyOption,
    connect,
    counted_input,
    open_output,
    parse_context,
    progress_for,
    with_kms_endpoint,
)
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice
from strongroom.cli.option_groups import option_group
from strongroom.data.keys import DataKey
from strongroom.data.kms_http import KmsHttpDataKeys
from strongroom.data.objects import ObjectBackend, ObjectStore
from strongroom.data.objects_local import LocalBackend
from strongroom.data.objects_s3 import S3Backend
from strongroom.errors import InvalidCiphertextError, ValidationError

if TYPE_CHECKING:
    from strongroom.data.user_keys_http import HttpUserKeys

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Keep objects in this local directory.", show_default=False),
]
BucketOption = Annotated[
    str | None,
    typer.Option("--s3-bucket", help="Keep objects in this S3 bucket.", show_default=False),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="Encrypt for this end user: under their user key (a Strongroom server's user "
        "keys), so destroying that key makes the object unreadable.",
        show_default=False,
    ),
]
S3EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="S3-compatible endpoint URL (default: $AWS_ENDPOINT_URL_S3, then AWS S3).",
        show_default=False,
    ),
]
S3ProfileOption = Annotated[
    str | None,
    typer.Option("--s3-profile", help="Named AWS profile for S3 credentials.", show_default=False),
]
TenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="Tenant namespace (default: the account id of the KMS credentials).",
        show_default=False,
    ),
]


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """Where the objects are: ``--dir`` or ``--s3-bucket`` (with ``--s3-*``), and ``--tenant``."""

    directory: Path | None = None
    bucket: str | None = None
    s3_endpoint: str | None = None
    s3_profile: str | None = None
    tenant: str | None = None


NO_STORE = StoreChoice()
with_store = option_group(
    "where",
    StoreChoice,
    {
        "directory": DirOption,
        "bucket": BucketOption,
        "s3_endpoint": S3EndpointOption,
        "s3_profile": S3ProfileOption,
        "tenant": TenantOption,
    },
)
"""``--dir``, ``--s3-bucket``, ``--s3-endpoint``, ``--s3-profile``, ``--tenant``."""


def sealed_for_user(wrapped_key: bytes) -> str | None:
    """The end user a wrapped data key is sealed for (its public header), if any."""
    from strongroom.crypto.blob import BlobKind, InvalidBlob, parse_header

    try:
        header, _ = parse_header(bytes(wrapped_key))
    except InvalidBlob:
        return None
    return header.user_id if header.kind is BlobKind.USER_KEY else None


def backend_of(where: StoreChoice, *, writing: bool = False) -> ObjectBackend:
    """The backend named by ``--dir`` or ``--s3-bucket`` (exactly one).

    Only a write (``put``) may create the ``--dir`` directory; reading one that does not
    exist says so instead of reporting every object missing.
    """
    if (where.directory is None) == (where.bucket is None):
        fail("give exactly one of --dir PATH and --s3-bucket BUCKET")
    if where.directory is not None:
        if not writing and not where.directory.is_dir():
            raise ValidationError(
                f"--dir {where.directory}: no such directory. 'strongroom objects put' "
                "creates it with the first object; check the path otherwise."
            )
        return LocalBackend(where.directory)
    assert where.bucket is not None
    return S3Backend.connect(where.bucket, endpoint_url=where.s3_endpoint, profile=where.s3_profile)


class LazyKeys:
    """The KMS client, connected on first use: ``ls``/``rm`` with ``--tenant`` need none."""

    def __init__(self, options: EndpointChoice) -> None:
        self._options = options
        self._keys: KmsHttpDataKeys | None = None

    def keys(self) -> KmsHttpDataKeys:
        """The connected client."""
        if self._keys is None:
            self._keys = connect(self._options)
        return self._keys

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        """As :meth:`KmsHttpDataKeys.generate_data_key`."""
        return self.keys().generate_data_key(key_id, context)

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """As :meth:`KmsHttpDataKeys.decrypt_data_key`; a user's data key says whose it is."""
        try:
            return self.keys().decrypt_data_key(wrapped_key, context, key_id)
        except InvalidCiphertextError:
            user = sealed_for_user(wrapped_key)
            if user is None:
                raise
            raise InvalidCiphertextError(
                f"This object was encrypted for end user {user!r} (under their user key), "
                f"which cannot open it now: that user key was destroyed (crypto-shredding) "
                f"or the object was altered. Add --user {shlex.quote(user)} to find out which."
            ) from None

    def close(self) -> None:
        """Close the client if it was connected."""
        if self._keys is not None:
            self._keys.close()


def _check_user_key(users: HttpUserKeys, key: str, user: str, create: bool) -> None:
    """Refuse to give ``user`` a new key silently: a destroyed one must stay destroyed."""
    if users.user_key_exists(key, user):
        return
    if not create:
        raise ValidationError(
            f"End user {user!r} has no user key under {key}: it was never created, or it "
            "was destroyed (crypto-shredding, and then their earlier objects are gone for "
            "good). To give them a new key and store this object under it, add "
            "--create-user-key (or run 'strongroom user-keys create' first)."
        )
    users.create_user_keys(key, [user])


@contextlib.contextmanager
def object_store(
    where: StoreChoice,
    kms: EndpointChoice,
    key: str | None = None,
    user: str | None = None,
    create_user_key: bool | None = None,
) -> Iterator[ObjectStore]:
    """The store of ``--dir``/``--s3-*`` and the KMS options (inside ``cli_errors``).

    With ``user``, data keys are that end user's (``StrongroomUserKeys`` over HTTP).
    ``create_user_key`` is given for writes (``put``): whether a user without a key under
    ``key`` may get one now.
    """
    backend = backend_of(where, writing=create_user_key is not None)
    tenant = where.tenant
    if user is not None:
        from strongroom.cli.user_keys import client

        with client(kms) as users:
            owner = tenant or users.kms.account_id()
            if key is not None and create_user_key is not None:
                _check_user_key(users, key, user, create_user_key)
            yield ObjectStore(backend, users.for_user(user), tenant=owner, key_id=key)
        return
    keys = LazyKeys(kms)
    try:
        yield ObjectStore(backend, keys, tenant=tenant or keys.keys().account_id(), key_id=key)
    finally:
        keys.close()


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
