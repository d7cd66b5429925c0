"""Serving the Workload API on a unix socket: in the foreground, or in a thread.

:class:`AgentServer` binds the socket (mode 0777: any local process may connect, the
attestation decides what it gets; the directory's permissions can narrow that), refusing
to take over a socket another agent still answers on. :func:`run_agent` serves until
SIGTERM or SIGINT (``strongroom mesh agent``); :class:`AgentThread` serves from a thread
with its own event loop (tests, and programs that embed an agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import threading
from pathlib import Path

from strongroom.errors import ValidationError
from strongroom.mesh.agent.limits import AgentLimits, GuardedServer
from strongroom.mesh.agent.workload_api import WorkloadApi

_log = logging.getLogger("strongroom.mesh.agent.serve")
SOCKET_MODE = 0o777
MAX_SOCKET_PATH = 107
START_TIMEOUT_S = 30.0


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file nobody answers on; refuse a live one or a non-socket."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ValidationError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise ValidationError(f"another agent is serving on {path}")


class AgentServer:
    """The Workload API served on one unix socket."""

    def __init__(
        self, api: WorkloadApi, socket_path: Path, limits: AgentLimits | None = None
    ) -> None:
        if len(os.fsencode(str(socket_path))) > MAX_SOCKET_PATH:
            raise ValidationError(f"a unix socket path is at most {MAX_SOCKET_PATH} bytes")
        self._api = api
        self.socket_path = socket_path
        self.limits = limits or AgentLimits()
        self._server: GuardedServer | None = None

    async def start(self) -> None:
        """Bind the socket and start answering."""
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        _clear_stale_socket(self.socket_path)
        server = GuardedServer([self._api], self.limits)
        await server.start(path=str(self.socket_path))
        os.chmod(self.socket_path, SOCKET_MODE)
        self._server = server
        _log.info("SPIFFE Workload API on unix://%s", self.socket_path)

    async def close(self) -> None:
        """Stop accepting, end the open streams, remove the socket file."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        self.socket_path.unlink(missing_ok=True)


def run_agent(api: WorkloadApi, socket_path: Path) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""

    async def main() -> None:
        agent = AgentServer(api, socket_path)
        await agent.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            _log.info("stopping the Workload API")
            await agent.close()

    asyncio.run(main())
    return 0


class AgentThread:
    """An agent serving from a background thread with its own event loop."""

    def __init__(
        self, api: WorkloadApi, socket_path: Path, limits: AgentLimits | None = None
    ) -> None:
        self._agent = AgentServer(api, socket_path, limits)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="strongroom-mesh-agent", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def socket_path(self) -> Path:
        """Where the agent listens."""
        return self._agent.socket_path

    @property
    def endpoint(self) -> str:
        """The ``SPIFFE_ENDPOINT_SOCKET`` value for this agent (``unix:///path``)."""
        return f"unix://{self._agent.socket_path}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._agent.start())
        except BaseException as exc:
            self._error = exc
            self._loop.close()  # its self-pipe sockets, which nothing else would close
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._agent.close())
        self._end_tasks()
        self._loop.close()

    def _end_tasks(self) -> None:
        """End what the loop still runs before it closes, as ``asyncio.run`` does.

        A connection accepted just as the agent stopped is still being set up by a task;
        closing the loop under it would leave its socket open. Cancelled, it closes its
        transport, and one more loop step runs the close.
        """
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(asyncio.sleep(0))  # the transports' close callbacks

    def start(self) -> AgentThread:
        """Start serving; return once the socket answers (or raise why it does not)."""
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise TimeoutError("the agent did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed already
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)

    def __enter__(self) -> AgentThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
