"""Serve with N worker processes sharing one listening socket.

The supervisor binds the socket once, then starts each worker as a fresh interpreter
(``multiprocessing`` spawn, never a bare fork: PKCS#11 sessions, PostgreSQL connections
and OpenSSL state must not be shared) handing it the socket. Every worker builds its own
key service. SIGTERM or SIGINT to the supervisor is passed on to every worker, which
finishes its requests in flight and exits; a worker that dies on its own is replaced,
unless workers keep dying right after they start, which stops the server.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import MutableSequence
from multiprocessing.process import BaseProcess
from types import FrameType

from strongroom.server.balance import ABSENT, shared_counts
from strongroom.server.metrics import MULTIPROC_ENV
from strongroom.server.settings import ServerSettings
from strongroom.server.worker import configure_logging, run_worker

_log = logging.getLogger("strongroom.server")
BACKLOG = 2048
CRASH_WINDOW_SECONDS = 10.0
"""A worker that exits within this long of its start counts as a crash loop."""
MAX_QUICK_CRASHES = 5


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (IPv6 if ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _worker_main(
    settings: ServerSettings,
    sock: socket.socket,
    supervisor_pid: int,
    counts: MutableSequence[int],
    index: int,
) -> None:
    """Entry point of a spawned worker process."""
    sys.exit(run_worker(settings, sock, supervisor_pid, counts, index))


class Supervisor:
    """Start, watch and stop the worker processes of one server."""

    def __init__(self, settings: ServerSettings, sock: socket.socket) -> None:
        self._settings = settings
        self._sock = sock
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        # every worker's open connections, so each takes an even share (server/balance.py)
        self._counts = shared_counts(self._context, settings.workers)
        self._started: dict[int, float] = {}
        self._stopping = False
        self._quick_crashes = 0

    def _spawn(self, index: int) -> BaseProcess:
        self._counts[index] = ABSENT  # until the new worker serves
        process = self._context.Process(
            target=_worker_main,
            args=(self._settings, self._sock, os.getpid(), self._counts, index),
            name="strongroom-worker",
            daemon=False,
        )
        process.start()
        self._started[id(process)] = time.monotonic()
        return process

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            _log.info("received %s: stopping the workers", signal.Signals(signum).name)
        self._stopping = True
        # Close our copy of the listener: once the workers close theirs, connecting is
        # refused at once instead of waiting in a backlog nobody accepts from.
        self._sock.close()
        for process in self._workers:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def run(self) -> int:
        """Run until stopped; return 0 if every worker shut down cleanly."""
        configure_logging(self._settings.log_level, self._settings.access_log)
        with tempfile.TemporaryDirectory(prefix="strongroom-metrics-") as metrics_dir:
            os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by every worker
            try:
                return self._run()
            finally:
                os.environ.pop(MULTIPROC_ENV, None)

    def _run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._workers = [self._spawn(index) for index in range(self._settings.workers)]
            while not self._stopping:
                sentinels = [p.sentinel for p in self._workers]
                multiprocessing.connection.wait(sentinels, timeout=0.5)
                if not self._stopping:
                    self._replace_dead()
            return self._wait_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._sock.close()

    def _replace_dead(self) -> None:
        for index, process in enumerate(self._workers):
            if process.is_alive():
                continue
            lived = time.monotonic() - self._started.pop(id(process), 0.0)
            _log.error("worker %s exited with status %s", process.pid, process.exitcode)
            if lived < CRASH_WINDOW_SECONDS:
                self._quick_crashes += 1
                if self._quick_crashes >= MAX_QUICK_CRASHES:
                    _log.error("workers keep crashing at start: stopping the server")
                    self._on_signal(signal.SIGTERM, None)
                    return
            self._workers[index] = self._spawn(index)

    def _wait_all(self) -> int:
        deadline = time.monotonic() + self._settings.graceful_seconds + 15.0
        status = 0
        for process in self._workers:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                _log.error("worker %s did not stop in time: killing it", process.pid)
                process.kill()
                process.join()
                status = 1
            elif process.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT):
                status = 1
        return 1 if self._quick_crashes >= MAX_QUICK_CRASHES else status


def serve(settings: ServerSettings, sock: socket.socket) -> int:
    """Serve on ``sock`` in this process (one worker) or with a supervisor (several)."""
    if settings.workers <= 1:
        try:
            return run_worker(settings, sock)
        finally:
            sock.close()
    return Supervisor(settings, sock).run()
