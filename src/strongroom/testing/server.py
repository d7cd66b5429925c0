"""Run ``strongroom server`` as a subprocess for tests and demos.

::

    with run_server(tmp_path / "data") as (endpoint, ca_bundle, admin):
        kms = boto3.client("kms", endpoint_url=endpoint, verify=str(ca_bundle),
                           aws_access_key_id=admin["AccessKeyId"],
                           aws_secret_access_key=admin["SecretAccessKey"],
                           region_name=admin["Region"])

The server listens on 127.0.0.1 on a free port; the block starts once ``/healthz``
answers. ``ca_bundle`` is ``DATA_DIR/ca.pem`` (``None`` with ``--insecure-http`` or an
operator's ``--tls-cert``); ``admin`` is ``admin-credentials.json`` (empty if this data
directory has none, e.g. a second node over a shared store). Leaving the block sends
SIGTERM and waits for a graceful exit. :class:`ServerProcess` gives finer control
(signals, exit status, the server's output). Clients of a running server are
:mod:`strongroom.testing.server_clients`', the console script :mod:`strongroom.testing.console`'s
(both re-exported here).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from strongroom.errors import InternalError
from strongroom.testing.console import console_script, run_cli
from strongroom.testing.server_clients import (
    ServerInfo,
    audit_events,
    aws_env,
    client_for,
    scrape_metrics,
    signed_json_client,
)

__all__ = [
    "CA_FILE",
    "CREDENTIALS_FILE",
    "START_TIMEOUT_SECONDS",
    "STOP_TIMEOUT_SECONDS",
    "ServerInfo",
    "ServerProcess",
    "audit_events",
    "aws_env",
    "client_for",
    "console_script",
    "free_port",
    "run_cli",
    "run_server",
    "scrape_metrics",
    "signed_json_client",
]

CREDENTIALS_FILE = "admin-credentials.json"
CA_FILE = "ca.pem"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 45.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One ``strongroom server`` subprocess on 127.0.0.1 and a free port."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *extra_args: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = tuple(extra_args)
        self.port = port or free_port()
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.insecure = "--insecure-http" in self.extra_args
        self.own_certificate = "--tls-cert" in self.extra_args

    @property
    def endpoint_url(self) -> str:
        """``https://127.0.0.1:<port>`` (``http`` with ``--insecure-http``)."""
        return f"{'http' if self.insecure else 'https'}://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> Path | None:
        """``DATA_DIR/ca.pem`` when the server serves a certificate of its own CA."""
        if self.insecure or self.own_certificate:
            return None
        return self.data_dir / CA_FILE

    def credentials(self) -> dict[str, Any]:
        """The admin credentials file of the data directory, or ``{}`` if it has none."""
        path = self.data_dir / CREDENTIALS_FILE
        if not path.exists():
            return {}
        loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return loaded

    def info(self) -> ServerInfo:
        """Endpoint, CA bundle and admin credentials."""
        return ServerInfo(self.endpoint_url, self.ca_bundle, self.credentials())

    def command(self) -> list[str]:
        """The command line that starts the server."""
        return [
            sys.executable,
            "-m",
            "strongroom.cli",
            "server",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra_args,
        ]

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> ServerProcess:
        """Start the process and wait until ``/healthz`` answers."""
        env = dict(os.environ if self.env is None else self.env)
        env["PYTHONUNBUFFERED"] = "1"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        # Callers often stop() the server and read output() afterwards, without close():
        # the log is then closed when this object goes away, not left to a ResourceWarning.
        weakref.finalize(self, self._log.close)
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.wait_healthy(timeout)
        return self

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0, os.SEEK_END)
        return text

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting ``ca.pem`` (``None`` for plain HTTP)."""
        if self.insecure:
            return None
        bundle = self.ca_bundle
        if bundle is None:
            return ssl._create_unverified_context()  # noqa: S323 - operator cert, no CA here
        return ssl.create_default_context(cafile=str(bundle))

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET ``path`` from the server; return status and body."""
        conn: http.client.HTTPConnection
        if self.insecure:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        else:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=timeout, context=self.ssl_context()
            )
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def wait_healthy(self, timeout: float) -> None:
        """Poll ``/healthz`` until it answers 200; fail if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise InternalError(
                    f"strongroom server exited with status {self.process.returncode} "
                    f"before it served:\n{self.output()}"
                )
            ready = self.ca_bundle is None or self.ca_bundle.exists()
            if ready:
                try:
                    if self.get("/healthz", timeout=2.0)[0] == 200:
                        return
                except (OSError, http.client.HTTPException):
                    pass
            if time.monotonic() > deadline:
                self.kill()
                raise InternalError(f"strongroom server did not start:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to the server (the supervisor, with ``--workers``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """Wait for the process to exit; return its status (kill it after ``timeout``)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise InternalError(
                f"strongroom server did not stop within {timeout} s:\n{self.output()}"
            ) from None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then wait for the graceful exit; return the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """Kill the server and its workers at once (no graceful shutdown)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        """Stop the server if it still runs and drop its output."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.stop()
            finally:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def run_server(data_dir: str | os.PathLike[str], *extra_args: str) -> Iterator[ServerInfo]:
    """Start ``strongroom server --data-dir DATA_DIR *extra_args`` on a free port.

    Yields ``(endpoint_url, ca_bundle, admin_credentials)``; stops the server (SIGTERM,
    graceful) when the block ends.
    """
    server = ServerProcess(data_dir, *extra_args)
    server.start()
    try:
        yield server.info()
    finally:
        server.close()
