"""A Strongroom HTTPS server in a child process, for end-to-end tests with real AWS clients.

::

    with start_server(tmp_path / "data") as server:
        kms = kms_client(server.endpoint, server.admin, region="eu-west-1")
        other = add_tenant(server.data_dir, "tenant-b")

:func:`start_server` runs ``strongroom.testing.server.run_server`` (the real
``strongroom server`` command) when that module exists; otherwise a stand-in that does
what the command does on first start, enough for the tests: it initialises the data
directory (SQLite store, local root key), creates the admin tenant and writes its access
key to ``admin-credentials.json`` (0600), makes a test CA (``ca.pem``) and serves
:func:`strongroom.api.create_app` with uvicorn over HTTPS on a free loopback port,
flushing the audit buffer every 200 ms. Run the stand-in alone with
``python -m strongroom.testing.e2e_server DATA_DIR``; it prints one JSON line once
it listens and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.testing.http import AwsCredentials, Endpoint

ADMIN_CREDENTIALS_FILE = "admin-credentials.json"
CA_BUNDLE_FILE = "ca.pem"
TLS_DIR = "tls"
READY_MARK = "strongroom-e2e-server listening "
AUDIT_FLUSH_INTERVAL_S = 0.2
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A server process the tests talk to, its data directory and the admin's access key."""

    endpoint: Endpoint
    admin: AwsCredentials
    data_dir: Path
    real_command: bool


def add_tenant(data_dir: Path, name: str, user: str = "app") -> AwsCredentials:
    """Create a tenant and one access key in the running server's data directory.

    Runs in this process on the same store (SQLite allows a second process; the server
    finds the new access key on its next lookup).
    """
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
    """Delete an access key in the running server's data directory."""
    from strongroom.cli.context import service_session

    with service_session(data_dir) as service:
        service.delete_access_key(access_key_id)


@contextlib.contextmanager
def start_server(data_dir: Path, *extra_args: str) -> Iterator[RunningServer]:
    """Run a server on ``data_dir`` (empty or missing) until the block ends."""
    try:
        real = importlib.import_module("strongroom.testing.server")
    except ModuleNotFoundError:
        real = None
    if real is not None and hasattr(real, "run_server"):
        with real.run_server(data_dir, *extra_args) as (url, ca_bundle, admin):
            yield RunningServer(
                Endpoint(str(url), Path(ca_bundle)),
                AwsCredentials.from_json(dict(admin)),
                Path(data_dir),
                real_command=True,
            )
        return
    with run_stand_in(data_dir) as server:
        yield server


@contextlib.contextmanager
def run_stand_in(data_dir: Path) -> Iterator[RunningServer]:
    """Run the stand-in server (this module as a child process) on ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir.parent / f"{data_dir.name}.server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "strongroom.testing.e2e_server", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = _wait_ready(process, data_dir)
        admin = json.loads((data_dir / ADMIN_CREDENTIALS_FILE).read_text("utf-8"))
        yield RunningServer(
            Endpoint(url, data_dir / CA_BUNDLE_FILE),
            AwsCredentials.from_json(admin),
            data_dir,
            real_command=False,
        )
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def _wait_ready(process: subprocess.Popen[bytes], data_dir: Path) -> str:
    result: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace")
            if line.startswith(READY_MARK):
                result.append(json.loads(line[len(READY_MARK) :])["url"])
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    if not result:
        process.kill()
        log = data_dir.parent / f"{data_dir.name}.server.log"
        detail = log.read_text("utf-8", "replace")[-4000:] if log.exists() else ""
        raise RuntimeError(f"the e2e server did not start:\n{detail}")
    return result[0]


def _first_start(data_dir: Path) -> None:
    from strongroom.cli.context import service_session
    from strongroom.cli.init import initialise
    from strongroom.testing.tls import write_test_pki

    initialise(data_dir)
    with service_session(data_dir) as service:
        tenant = service.create_tenant("admin")
        principal, secret = service.create_access_key(tenant.account_id, "admin", is_admin=True)
    credentials = {
        "AccessKeyId": principal.access_key_id,
        "SecretAccessKey": secret,
        "AccountId": tenant.account_id,
        "Arn": principal.arn,
    }
    path = data_dir / ADMIN_CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(credentials, out)
    files = write_test_pki(data_dir / TLS_DIR)
    shutil.copyfile(files.ca, data_dir / CA_BUNDLE_FILE)


def serve(data_dir: Path) -> None:
    """Initialise ``data_dir`` if it is empty, then serve HTTPS until SIGTERM or SIGINT."""
    import uvicorn

    from strongroom.api import create_app
    from strongroom.cli.context import open_service

    if not (data_dir / ADMIN_CREDENTIALS_FILE).exists():
        _first_start(data_dir)
    service = open_service(data_dir)
    stop = threading.Event()

    def flush_audit() -> None:
        while not stop.wait(AUDIT_FLUSH_INTERVAL_S):
            service.audit.flush()

    flusher = threading.Thread(target=flush_audit, name="audit-flush", daemon=True)
    flusher.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # connections wait here until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(service),
        ssl_certfile=str(data_dir / TLS_DIR / "server.pem"),
        ssl_keyfile=str(data_dir / TLS_DIR / "server.key"),
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    url: dict[str, Any] = {"url": f"https://127.0.0.1:{port}"}
    sys.stdout.write(READY_MARK + json.dumps(url) + "\n")
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    finally:
        stop.set()
        flusher.join()
        service.close()
        sock.close()


def main(argv: list[str]) -> int:
    """``python -m strongroom.testing.e2e_server DATA_DIR``."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m strongroom.testing.e2e_server DATA_DIR\n")
        return 2
    serve(Path(argv[0]).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
