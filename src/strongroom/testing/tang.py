"""A throwaway Tang server for tests and benchmarks: Debian's ``tangd`` on a loopback port.

::

    with TangServer(tmp_path) as tang:
        config = {"url": tang.url}      # clevis encrypt tang "$config" -y

``tangd`` answers one HTTP request on stdin/stdout and relies on its supervisor to accept
connections (systemd's ``tangd.socket`` with ``Accept=true``). This class is that
supervisor: it listens on 127.0.0.1 and a free port and starts one ``tangd`` per
connection, the connection as its stdin and stdout, as systemd does. Keys are made once
with ``tangd-keygen`` in a private directory.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from types import TracebackType

from strongroom.errors import InternalError

LIBEXEC = Path("/usr/libexec")


def tang_binary(name: str) -> str:
    """The path of ``tangd`` or ``tangd-keygen`` (Debian: /usr/libexec)."""
    for candidate in (LIBEXEC / name, Path("/usr/lib/x86_64-linux-gnu") / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise InternalError(f"{name} is not installed (Debian: apt-get install tang)")
    return found


class TangServer:
    """``tangd`` behind a per-connection accept loop on 127.0.0.1 (see the module docstring)."""

    def __init__(self, base: Path) -> None:
        self.keys = base / "tang-db"
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TangServer:
        """Make the keys, listen, start accepting."""
        self.keys.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - Debian's tangd-keygen on our own directory
            [tang_binary("tangd-keygen"), str(self.keys)], check=True, capture_output=True
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="tang-accept", daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        tangd = tang_binary("tangd")
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                process = subprocess.Popen(  # noqa: S603 - Debian's tangd
                    [tangd, str(self.keys)],
                    stdin=conn.fileno(),
                    stdout=conn.fileno(),
                    stderr=subprocess.DEVNULL,
                )
            threading.Thread(target=process.wait, daemon=True).start()

    def stop(self) -> None:
        """Stop accepting (running ``tangd`` processes finish their one request)."""
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> TangServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
