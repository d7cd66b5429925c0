"""A throwaway MariaDB server (Debian's ``mariadbd``) with InnoDB encryption.

Its keys come from a Vault-compatible server through the ``hashicorp_key_management`` plugin.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

MARIADBD = "/usr/sbin/mariadbd"
CLIENT = "/usr/bin/mariadb"
INSTALL_DB = "/usr/bin/mariadb-install-db"
PLUGIN = "/usr/lib/mysql/plugin/hashicorp_key_management.so"


def available() -> bool:
    """Whether mariadbd and the hashicorp plugin are installed."""
    return Path(MARIADBD).exists() and Path(PLUGIN).exists() and Path(CLIENT).exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TempMariaDB:
    """One ``mariadbd`` on a loopback port and a socket in ``directory``."""

    def __init__(
        self, directory: Path, vault_url: str, token: str, ca: Path, encrypt: bool = True
    ) -> None:
        self.directory = directory
        self.datadir = directory / "data"
        self.socket = directory / "mysql.sock"
        self.port = _free_port()
        self.vault_url = vault_url
        self.token = token
        self.ca = ca
        self.encrypt = encrypt
        self.process: subprocess.Popen[bytes] | None = None
        self.config = directory / "my.cnf"

    def write_config(self) -> None:
        """(Re)write my.cnf from the current token and URL."""
        lines = [
            "[mariadbd]",
            f"datadir={self.datadir}",
            f"socket={self.socket}",
            f"port={self.port}",
            "bind-address=127.0.0.1",
            "user=root",
            f"log-error={self.directory / 'error.log'}",
            f"pid-file={self.directory / 'mariadbd.pid'}",
            "innodb_buffer_pool_size=64M",
            "innodb_log_file_size=32M",
        ]
        if self.encrypt:
            lines += [
                "plugin-load-add=hashicorp_key_management.so",
                f"hashicorp-key-management-vault-url={self.vault_url}",
                f"hashicorp-key-management-token={self.token}",
                f"hashicorp-key-management-vault-ca={self.ca}",
                "hashicorp-key-management-cache-timeout=1000",
                "hashicorp-key-management-cache-version-timeout=500",
                "innodb_encrypt_tables=ON",
                "innodb_encrypt_log=ON",
                "innodb_encrypt_temporary_tables=ON",
                "innodb_encryption_threads=2",
                "innodb_encryption_rotate_key_age=1",
            ]
        self.config.write_text("\n".join(lines) + "\n")

    def install(self) -> None:
        """Create the data directory (system tables)."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        subprocess.run(  # noqa: S603 - fixed program, our own arguments
            [
                INSTALL_DB,
                f"--defaults-file={self.config}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, timeout: float = 60.0) -> bool:
        """Start the server; return whether it accepts connections before ``timeout``."""
        self.write_config()
        self.process = subprocess.Popen(  # noqa: S603
            [MARIADBD, f"--defaults-file={self.config}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            ping = subprocess.run(  # noqa: S603
                [CLIENT, "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", "SELECT 1"],
                capture_output=True,
                timeout=30,
            )
            if ping.returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def sql(self, statement: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run SQL through the ``mariadb`` client; tab-separated output, no headers."""
        return subprocess.run(  # noqa: S603
            [
                CLIENT,
                "--no-defaults",
                f"--socket={self.socket}",
                "-uroot",
                "-N",
                "-B",
                "-e",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def stop(self) -> None:
        """Slow shutdown (pages flushed), then wait for the process."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.sql("SET GLOBAL innodb_fast_shutdown=0; SHUTDOWN", check=False)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def error_log(self) -> str:
        """The server's error log."""
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""
