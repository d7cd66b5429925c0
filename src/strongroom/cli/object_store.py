"""Which object store the ``objects`` commands open: ``--dir`` or ``--s3-*``, and whose keys.

:func:`object_store` turns the store options (:data:`with_store`) and the KMS options
into an :class:`~strongroom.data.objects.ObjectStore`: a tenant's objects under the KMS
credentials' data keys (connected only when a key is needed), or with ``--user`` under an
end user's user keys (a user without a key is refused unless a write may create one).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import fail
from strongroom.cli.data import connect
from strongroom.cli.endpoint import EndpointChoice
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
