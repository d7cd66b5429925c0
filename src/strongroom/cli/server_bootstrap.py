"""Prepare a data directory for ``strongroom server``: first start and every start.

First start on an empty or missing directory: initialise it as ``strongroom init`` does
(SQLite and a local master key unless told otherwise), create the ``admin`` tenant and an
admin access key, and write them to ``admin-credentials.json`` (mode 0600). Every start:
make sure the instance CA exists (its key wrapped by the root of trust, in the key store)
and that ``ca.pem`` holds its certificate; keep ``Endpoint`` and ``CaBundle`` of an
existing credentials file current, unless another server already serves this data
directory: the first server holds ``server.lock`` (an ``flock``) while it runs, and the
credentials file keeps pointing at it, so starting a second server (on another port) never
sends the first one's clients elsewhere.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.audittrail import CheckpointFile, check_at_start
from strongroom.cli.context import open_service
from strongroom.cli.env import CREDENTIALS_FILE
from strongroom.cli.init import initialise
from strongroom.config import CONFIG_FILE, DataDirConfig, load_config
from strongroom.errors import AlreadyExistsError, NotFoundError, ValidationError
from strongroom.files import fsync_dir
from strongroom.kms import KeyService
from strongroom.tls import load_or_create_ca

ADMIN_TENANT = "admin"
"""Name of the tenant the first start creates for the administrator."""
LOCK_FILE = "server.lock"
"""Held (``flock``) by the server whose endpoint ``admin-credentials.json`` names."""
CA_FILE = "ca.pem"
DEFAULT_REGION = "us-east-1"


class ServerLock:
    """The claim of one running server on its data directory (``server.lock``).

    Who holds it is the server the credentials file points at; the kernel drops the lock
    when the process ends, however it ends. The file holds the holder's pid and endpoint
    for the message a second server prints.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def try_claim(cls, data_dir: Path, endpoint: str) -> tuple[ServerLock | None, str]:
        """Claim ``data_dir`` for this process; else ``None`` and who holds it."""
        path = data_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 1024, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            return None, holder or "another process"
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {endpoint}\n".encode(), 0)
        return cls(fd), ""

    def release(self) -> None:
        """Let another server claim the directory (the process's end does the same)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True, slots=True)
class Prepared:
    """What :func:`prepare_data_dir` found or made."""

    data_dir: Path
    config: DataDirConfig
    initialised: bool
    credentials_file: Path | None
    credentials_created: bool
    ca_file: Path
    lock: ServerLock | None = None
    """This server's claim on the data directory; ``None`` if another server has it."""
    other_server: str = ""
    """Who holds the claim when this server does not (``pid N on URL``)."""
    audit_accepted: str | None = None
    """What ``--accept-audit-rollback`` accepted (``None``: the audit matched its checkpoint)."""


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically with ``data`` (a new file of ``mode``, fsynced)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # the umask filtered the mode os.open was given
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _config_for(data_dir: Path, store_url: str | None, root_spec: str | None) -> DataDirConfig:
    config = load_config(data_dir)
    if store_url is not None and store_url != config.store_url:
        raise ValidationError(
            f"{data_dir} is configured with another key store: drop --store "
            f"(or edit {CONFIG_FILE} if the store has moved)"
        )
    if root_spec is not None and root_spec != config.root_of_trust:
        raise ValidationError(
            f"{data_dir} is configured with another root of trust: drop --root-of-trust"
        )
    return config


def _create_admin(service: KeyService) -> tuple[str, str, str] | None:
    """Create the admin tenant and its access key; ``None`` if it exists already."""
    try:
        service.find_tenant(ADMIN_TENANT)
        return None
    except NotFoundError:
        pass
    try:
        tenant = service.create_tenant(ADMIN_TENANT)
    except AlreadyExistsError:  # another node created it at the same moment
        return None
    principal, secret = service.create_access_key(tenant.account_id, "admin", is_admin=True)
    return principal.access_key_id, secret, tenant.account_id


def _credentials_json(info: dict[str, Any]) -> bytes:
    return (json.dumps(info, indent=2) + "\n").encode("utf-8")


def prepare_data_dir(
    data_dir: Path,
    *,
    store_url: str | None,
    root_spec: str | None,
    region: str | None,
    endpoint: str,
    serves_instance_ca: bool,
    mesh_trust_domain: str | None = None,
    accept_audit_rollback: bool = False,
) -> Prepared:
    """Initialise ``data_dir`` if needed, then make the admin credentials and CA bundle.

    ``endpoint`` is the URL the server is about to serve; ``serves_instance_ca`` says
    whether clients verify it with ``ca.pem`` (not with ``--insecure-http`` or an
    operator's certificate), which is what ``CaBundle`` records. With ``mesh_trust_domain``
    the server's certificate comes from that trust domain's mesh CA, and the bundle clients
    need is ``DATA_DIR/mesh-TD.pem`` (:mod:`strongroom.mesh.identity.ingress`).

    The audit chain is checked against its last signed checkpoint first
    (:func:`strongroom.audittrail.check_at_start`): a store whose audit is behind it is
    refused unless ``accept_audit_rollback``.
    """
    data_dir = Path(os.path.abspath(data_dir))
    initialised = not (data_dir / CONFIG_FILE).exists()
    if initialised:
        config = initialise(data_dir, root_spec or "local", store_url).config
    else:
        config = _config_for(data_dir, store_url, root_spec)
    ca_file = data_dir / CA_FILE
    creds_file = data_dir / CREDENTIALS_FILE
    lock, other_server = ServerLock.try_claim(data_dir, endpoint)
    service = open_service(data_dir)
    try:
        checkpoints = CheckpointFile(data_dir, service.audit.chain)
        accepted = check_at_start(service, checkpoints, accept_audit_rollback)
        root = service.root
        now = time.time()
        ca = service.store.write(lambda tx: load_or_create_ca(tx, root, now))
        if not ca_file.exists() or ca_file.read_bytes() != ca.pem:
            _write_private(ca_file, ca.pem, 0o644)
        if mesh_trust_domain is not None:
            from strongroom.mesh.identity.ingress import mesh_bundle_pem

            pem = mesh_bundle_pem(service.store, root, mesh_trust_domain, now)
            ca_file = data_dir / f"mesh-{mesh_trust_domain}.pem"
            if not ca_file.exists() or ca_file.read_bytes() != pem:
                _write_private(ca_file, pem, 0o644)
        bundle = str(ca_file) if serves_instance_ca else None
        admin = _create_admin(service)
        if admin is not None:
            access_key_id, secret, account = admin
            info = {
                "AccessKeyId": access_key_id,
                "SecretAccessKey": secret,
                "AccountId": account,
                "Region": region or DEFAULT_REGION,
                "Endpoint": endpoint,
                "CaBundle": bundle,
            }
            try:
                _write_private(creds_file, _credentials_json(info), 0o600)
            except BaseException:
                service.delete_access_key(access_key_id)  # a secret nobody has is no use
                raise
        elif creds_file.exists() and lock is not None:
            _refresh_credentials(creds_file, region, endpoint, bundle)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    finally:
        service.close()
    return Prepared(
        data_dir=data_dir,
        config=config,
        initialised=initialised,
        credentials_file=creds_file if creds_file.exists() else None,
        credentials_created=admin is not None,
        ca_file=ca_file,
        lock=lock,
        other_server=other_server,
        audit_accepted=accepted,
    )


def _refresh_credentials(path: Path, region: str | None, endpoint: str, bundle: str | None) -> None:
    """Point an existing credentials file at this run's endpoint (and region, if given)."""
    try:
        info = json.loads(path.read_bytes())
    except ValueError:
        return  # not ours to repair: leave it as the operator left it
    if not isinstance(info, dict):
        return
    wanted = dict(info, Endpoint=endpoint, CaBundle=bundle)
    if region is not None:
        wanted["Region"] = region
    if wanted != info:
        _write_private(path, _credentials_json(wanted), 0o600)
