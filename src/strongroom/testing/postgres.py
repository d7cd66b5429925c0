"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` on a loopback port.

::

    with TempPostgres(tmp_path) as pg:
        store = PostgresStore(pg.create_database("t1"))

The server runs the newest PostgreSQL found under ``/usr/lib/postgresql/*/bin`` (Debian's
layout) or on ``PATH``, trusts every local connection, listens on ``127.0.0.1`` only and
runs with ``fsync=off``: fast, and never for data anyone wants to keep. ``initdb`` refuses
to run as root, so as root the server runs as the ``postgres`` user in a private directory
that user owns (the base directory may not be reachable by it), removed again on exit.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from strongroom.errors import StoreError

_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_SERVER_USER = "postgres"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SETTINGS = (
    "listen_addresses = '127.0.0.1'",
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
    "max_connections = 300",
    "shared_buffers = 128MB",
    "log_min_messages = warning",
)


def find_bindir() -> Path:
    """Return the ``bin`` directory of the newest installed PostgreSQL."""
    versions = []
    for initdb in _DEBIAN_ROOT.glob("*/bin/initdb"):
        version = initdb.parent.parent.name
        if version.isdigit():
            versions.append((int(version), initdb.parent))
    if versions:
        return max(versions)[1]
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).resolve().parent
    raise StoreError("no PostgreSQL server installed (initdb not found)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TempPostgres:
    """A private PostgreSQL server living as long as its ``with`` block.

    ``dsn`` names the ``postgres`` database as the ``postgres`` superuser;
    :meth:`create_database` makes a fresh, empty database per test.
    """

    def __init__(self, base: Path, bindir: Path | None = None) -> None:
        self.base = Path(base)
        self._bindir = bindir
        self._as_root = os.geteuid() == 0
        self._workdir: Path | None = None
        self._started = False
        self.port = 0

    @property
    def dsn(self) -> str:
        """The connection string of the ``postgres`` database."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """The connection string of ``database`` on this server."""
        if not self._started:
            raise StoreError("the temporary PostgreSQL server is not running")
        return f"postgresql://{_SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` (letters, digits, ``_``); return its DSN."""
        if not _DB_NAME.match(name):
            raise StoreError(f"not a plain database name: {name!r}")
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def __enter__(self) -> TempPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _cmd(self, *argv: str) -> list[str]:
        if self._as_root:
            return ["runuser", "-u", _SERVER_USER, "--", *argv]
        return list(argv)

    def _run(self, *argv: str) -> None:
        assert self._workdir is not None
        proc = subprocess.run(  # noqa: S603 - argv built from fixed tool paths
            self._cmd(*argv),
            cwd=self._workdir,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
        if proc.returncode != 0:
            raise StoreError(
                f"{Path(argv[0]).name} failed ({proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )

    def start(self) -> None:
        """Create the cluster and start the server (about 2-3 s)."""
        bindir = self._bindir or find_bindir()
        self.base.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            self._workdir = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
            shutil.chown(self._workdir, _SERVER_USER, _SERVER_USER)
        else:
            self._workdir = self.base
        data = self._workdir / "data"
        sockets = self._workdir / "sockets"
        try:
            self._run(
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                _SERVER_USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
            self._run("mkdir", "-p", str(sockets))
            with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.write("\n# strongroom.testing.postgres\n")
                conf.write("".join(f"{line}\n" for line in _SETTINGS))
                conf.write(f"unix_socket_directories = '{sockets}'\n")
            self._start_on_free_port(bindir, data)
        except BaseException:
            self._cleanup()
            raise

    def _start_on_free_port(self, bindir: Path, data: Path) -> None:
        assert self._workdir is not None
        last: StoreError | None = None
        for _ in range(5):
            self.port = _free_port()
            try:
                self._run(
                    str(bindir / "pg_ctl"),
                    "start",
                    "-D",
                    str(data),
                    "-l",
                    str(self._workdir / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {self.port}",
                )
            except StoreError as exc:  # the port was taken between probing and binding
                last = exc
                continue
            self._started = True
            return
        raise last or StoreError("PostgreSQL did not start")

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``) and remove its files."""
        if self._workdir is None:
            return
        try:
            if self._started:
                self._run(
                    str((self._bindir or find_bindir()) / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self._workdir / "data"),
                    "-m",
                    "immediate",
                    "-w",
                )
        finally:
            self._started = False
            self._cleanup()

    def _cleanup(self) -> None:
        workdir, self._workdir = self._workdir, None
        if workdir is None:
            return
        if workdir == self.base:
            return
        log = workdir / "server.log"
        if log.exists():
            shutil.copyfile(log, self.base / "server.log")
        shutil.rmtree(workdir, ignore_errors=True)
