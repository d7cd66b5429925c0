"""One worker process: open the key service, load the TLS key, serve with uvicorn.

A worker serves on a listening socket it is handed (bound once by the supervisor, shared
by every worker) with uvicorn on uvloop and httptools. SIGTERM and SIGINT shut it down
gracefully: it stops accepting, finishes the requests in flight (up to
``graceful_seconds``), runs the lifespan shutdown (final audit flush, service closed) and
exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Generator, MutableSequence

import uvicorn

from strongroom.audittrail.checkpoint_file import CHECKPOINT_LOGGER
from strongroom.config import DataDirConfig
from strongroom.deployment import open_service
from strongroom.errors import InternalError
from strongroom.kms import KeyService
from strongroom.mesh.identity.ingress import server_credentials
from strongroom.server.balance import BalancedListener, ConnectionShares
from strongroom.server.direct_ssl import direct
from strongroom.server.guard import ConnectionGuard, raise_file_limit
from strongroom.server.http_protocol import step_flush
from strongroom.server.inline_protocol import InlineHttpProtocol
from strongroom.server.runtime import Runtime
from strongroom.server.settings import ServerSettings
from strongroom.tls import (
    ServerCredentials,
    SubjectNames,
    file_ssl_context,
    server_ssl_context,
)

_log = logging.getLogger("strongroom.server")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
ACCESS_LOGGER = "strongroom.api.access"
SWITCH_INTERVAL_SECONDS = 0.001


def settle_heap() -> None:
    """Freeze everything start-up made out of the garbage collector's sight.

    A worker imports uvicorn, uvloop, the key service with its wire models, and fills
    its caches before it serves: a full (generation 2) collection walked all of that (30
    to 145 ms, once in each worker's first 20 s of Decrypts, measured on a busy 2-core
    machine), inside whichever requests waited. Once
    frozen, a collection walks only what serving allocated since (the same fix as the
    KMS v2 plugin's). Called once start-up is done, right before the worker accepts its
    first connection, so the frozen heap is everything that start-up made.
    """
    gc.collect()
    gc.freeze()


def configure_logging(level: str, access_log: bool) -> None:
    """Server logs as text lines on stderr; access log and audit checkpoint lines (JSON) bare."""
    root = logging.getLogger()
    if not any(getattr(h, "_strongroom", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s")
        )
        handler._strongroom = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        access = logging.StreamHandler(sys.stderr)
        access.setFormatter(logging.Formatter("%(message)s"))
        access_logger = logging.getLogger(ACCESS_LOGGER)
        access_logger.addHandler(access)
        access_logger.propagate = False
        # signed audit checkpoints: bare JSON lines too, so a log shipper keeps them
        checkpoints = logging.getLogger(CHECKPOINT_LOGGER)
        checkpoints.addHandler(access)
        checkpoints.propagate = False
        checkpoints.setLevel(logging.INFO)
    root.setLevel(level.upper())
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access_log else logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def open_key_service(settings: ServerSettings) -> KeyService:
    """Open this process's store, root of trust and key service."""
    config = DataDirConfig(store_url=settings.store_url, root_of_trust=settings.root_spec)
    return open_service(
        config,
        settings.data_dir,
        audit_fail_open=settings.audit_fail_open,
        audit_backlog=settings.audit_backlog,
    )


def tls_for(
    settings: ServerSettings, service: KeyService
) -> tuple[ssl.SSLContext, ServerCredentials] | ssl.SSLContext | None:
    """The server's TLS context: from the instance CA, the operator's files, or none."""
    if settings.insecure_http:
        return None
    if settings.tls_cert is not None and settings.tls_key is not None:
        return file_ssl_context(settings.tls_cert, settings.tls_key)
    names = SubjectNames.build((*settings.tls_sans, settings.host))
    root = service.root
    now = time.time()
    credentials = service.store.write(lambda tx: server_credentials(tx, root, names, now))
    return server_ssl_context(credentials), credentials


class _Server(uvicorn.Server):
    """uvicorn's server with two changes to its graceful shutdown.

    - Idle keep-alive connections are dropped at once instead of closed with a TLS
      ``close_notify`` exchange: a pooled client that is not reading never answers it,
      and the shutdown would wait out the whole TLS shutdown timeout (30 s). Connections
      with a request in flight still finish it (uvicorn marks them to close after; the
      inline path of :mod:`strongroom.server.inline_protocol` does the same).
    - uvicorn raises the captured SIGTERM again once it has shut down, which kills the
      process with status -15; a clean shutdown here exits 0.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        _log.info("stopping: no new connections; finishing the requests in flight")
        # No await before uvicorn's own shutdown: it closes the listeners in this same
        # step, so no new connection is accepted in between.
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            idle = (cycle is None or getattr(cycle, "response_complete", False)) and not getattr(
                connection, "inline_busy", False
            )
            if (
                idle
                and transport is not None
                and not getattr(connection, "pipeline", None)
                and transport.get_write_buffer_size() == 0
            ):
                transport.abort()
        await super().shutdown(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start uvicorn on the supervisor's sockets, with a TLS handshake deadline.

        uvicorn does not pass ``ssl_handshake_timeout`` (the loop's default is 60 s), so a
        client that connects and never finishes its handshake would hold a connection
        that long; the workers always serve sockets they are handed.
        """
        if sockets is None:
            await super().startup(sockets)
            return
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(3)  # uvicorn's STARTUP_FAILURE
        config = self.config

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=_loop,
            )
            return protocol

        settle_heap()  # before the first connection: the collection takes tens of ms
        loop = asyncio.get_running_loop()
        step_flush(loop).behind = self.audit_behind
        handshake = self.handshake_timeout if config.ssl is not None else None
        if self.shares is not None and self.guard is not None:
            self.servers = [self._balanced(loop, sock, create_protocol) for sock in sockets]  # type: ignore[misc]
        else:
            self.servers = [
                await loop.create_server(
                    create_protocol,
                    sock=sock,
                    ssl=config.ssl,
                    backlog=config.backlog,
                    ssl_handshake_timeout=handshake,
                )
                for sock in sockets
            ]
        self.started = True
        _log.info("serving (%s)", "plain HTTP" if config.ssl is None else "TLS")

    handshake_timeout: float = 10.0
    audit_behind: Callable[[], bool] | None = None
    """Whether the audit flusher lags (the loop then yields at its steps' ends)."""
    shares: ConnectionShares | None = None
    """This worker's slot among its peers' connection counts (with a supervisor)."""
    guard: ConnectionGuard | None = None

    def _balanced(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        create_protocol: Callable[[], asyncio.Protocol],
    ) -> BalancedListener:
        """Accept from ``sock`` taking this worker's even share of the connections."""
        assert self.shares is not None and self.guard is not None
        guard = self.guard
        ssl_context = self.config.ssl
        listener = BalancedListener(
            loop,
            sock,
            create_protocol,
            self.shares,
            guard.__len__,
            ssl_context=ssl_context,
            handshake_timeout=self.handshake_timeout if ssl_context is not None else None,
        )
        guard.on_release = listener.publish
        listener.start()
        return listener

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_worker(
    settings: ServerSettings,
    sock: socket.socket,
    supervisor_pid: int | None = None,
    counts: MutableSequence[int] | None = None,
    index: int = 0,
) -> int:
    """Serve on ``sock`` until told to stop; return the exit status.

    A worker of a supervisor (``supervisor_pid``) also stops once that process is gone;
    with ``counts`` (every worker's open connections, shared) it is worker ``index`` and
    takes an even share of the connections.
    """
    configure_logging(settings.log_level, settings.access_log)
    # The audit flusher and maintenance threads hold the GIL in bursts of pure Python
    # (hashing a batch into the chain); hand it back to the event loop every millisecond
    # rather than every 5 ms, so those bursts do not show up as request latency.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    service = open_key_service(settings)
    server: _Server | None = None

    def orphaned() -> None:
        if server is not None:
            server.should_exit = True

    try:
        tls = tls_for(settings, service)
        context = tls[0] if isinstance(tls, tuple) else tls
        if context is not None:
            direct(context)  # uvloop's TLS reads and writes straight into OpenSSL
        runtime = Runtime(
            settings,
            service,
            tls=tls if isinstance(tls, tuple) else None,
            on_orphaned=orphaned,
            supervisor_pid=supervisor_pid,
        )
        if runtime.orphaned():
            raise InternalError("the supervisor exited while this worker was starting")
    except BaseException:
        service.close()
        raise
    limits = settings.limits
    guard = ConnectionGuard(limits, file_limit=raise_file_limit())
    config = uvicorn.Config(
        runtime,
        loop="uvloop",
        http=InlineHttpProtocol.bound_to(guard, runtime.api),
        timeout_keep_alive=limits.keepalive_seconds,
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.graceful_seconds),
        ssl_context_factory=None if context is None else (lambda _config, _default: context),
    )
    server = _Server(config)
    server.handshake_timeout = limits.handshake_timeout
    audit = service.audit
    lagging = max(1, audit.max_pending // 2)
    server.audit_behind = lambda: audit.pending() >= lagging
    if counts is not None:
        server.shares = ConnectionShares(counts, index)
        server.guard = guard
    try:
        server.run(sockets=[sock])
    finally:
        runtime.close()
    return 0 if server.started else 1
