"""End-to-end test plumbing around a real ``strongroom server`` process.

::

    with start_server(tmp_path / "data") as server:
        kms = kms_client(server.endpoint, server.admin, region="eu-west-1")
        other = add_tenant(server.data_dir, "tenant-b")

:func:`start_server` runs the ``strongroom server`` command through
:func:`strongroom.testing.server.run_server` (HTTPS with the instance CA, first start
initialises the data directory and writes the admin credentials) and describes it as a
:class:`RunningServer`. Tenants and access keys are added to the running server's data
directory from the test process: the server finds a new access key on its next lookup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from strongroom.testing.http import AwsCredentials, Endpoint


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A server process the tests talk to, its data directory and the admin's access key."""

    endpoint: Endpoint
    admin: AwsCredentials
    data_dir: Path


@contextlib.contextmanager
def start_server(data_dir: Path, *extra_args: str) -> Iterator[RunningServer]:
    """Run ``strongroom server`` on ``data_dir`` (empty or missing) over HTTPS until the end."""
    from strongroom.testing.server import run_server

    if "--insecure-http" in extra_args or "--tls-cert" in extra_args:
        raise ValueError("end-to-end tests run over HTTPS with the instance CA")
    with run_server(data_dir, *extra_args) as (url, ca_bundle, admin):
        if ca_bundle is None:
            raise RuntimeError("the server wrote no CA bundle")
        yield RunningServer(
            Endpoint(str(url), Path(ca_bundle)), AwsCredentials.from_json(dict(admin)), data_dir
        )


def add_tenant(data_dir: Path, name: str, user: str = "app") -> AwsCredentials:
    """Create a tenant and one access key (principal ``user``) in ``data_dir``."""
    from strongroom.cli.context import service_session

    with service_session(data_dir) as service:
        tenant = service.create_tenant(name)
        principal, secret = service.create_access_key(tenant.account_id, user)
    return AwsCredentials(principal.access_key_id, secret, tenant.account_id)


def add_access_key(
    data_dir: Path, account_id: str, user: str, is_admin: bool = False
) -> AwsCredentials:
    """Create another access key (principal ``user``) in an existing tenant."""
    from strongroom.cli.context import service_session

    with service_session(data_dir) as service:
        principal, secret = service.create_access_key(account_id, user, is_admin=is_admin)
    return AwsCredentials(principal.access_key_id, secret, account_id)


def revoke_access_key(data_dir: Path, access_key_id: str) -> None:
    """Delete an access key (a server reuses a key it looked up for a few seconds)."""
    from strongroom.cli.context import service_session

    with service_session(data_dir) as service:
        service.delete_access_key(access_key_id)
