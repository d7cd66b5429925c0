"""The gRPC face of the plugin: ``v2.KeyManagementService`` on a unix socket.

:class:`KmsServicer` adapts :class:`~strongroom.k8s.plugin.KmsPlugin` to the three RPCs of
the official ``api.proto`` (messages from the generated
:mod:`strongroom.k8s.proto.api_pb2`), turns every failure into a gRPC status (never a
crash, never key material in a message), logs each call as JSON with kube-apiserver's
request ``uid`` and counts it in the metrics. :class:`PluginServer` binds the socket (mode
0600: kube-apiserver connects as root), serves on a thread pool and on :meth:`stop` drains
the calls in flight and removes the socket file.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from strongroom.errors import AuthError, ClientError, StrongroomError, ValidationError
from strongroom.k8s.metrics import PluginMetrics
from strongroom.k8s.plugin import API_VERSION, KmsPlugin
from strongroom.k8s.proto import api_pb2

SERVICE_NAME = "v2.KeyManagementService"
"""The fully qualified gRPC service name of ``api.proto``."""
MAX_MESSAGE_BYTES = 128 * 1024
"""Largest request accepted (a Decrypt carries at most 1 kB + 32 kB of annotations)."""
MAX_UNIX_PATH_BYTES = 107
SOCKET_MODE = 0o600
SWITCH_INTERVAL_SECONDS = 0.001
"""How long a thread may hold the GIL while another waits (Python's default is 5 ms)."""

_CODES: dict[str, grpc.StatusCode] = {
    "ValidationException": grpc.StatusCode.INVALID_ARGUMENT,
    "InvalidCiphertextException": grpc.StatusCode.INVALID_ARGUMENT,
    "IncorrectKeyException": grpc.StatusCode.INVALID_ARGUMENT,
    "InvalidArnException": grpc.StatusCode.INVALID_ARGUMENT,
    "NotFoundException": grpc.StatusCode.NOT_FOUND,
    "DisabledException": grpc.StatusCode.FAILED_PRECONDITION,
    "KMSInvalidStateException": grpc.StatusCode.FAILED_PRECONDITION,
    "InvalidKeyUsageException": grpc.StatusCode.FAILED_PRECONDITION,
    "UnsupportedOperationException": grpc.StatusCode.FAILED_PRECONDITION,
    "AccessDeniedException": grpc.StatusCode.PERMISSION_DENIED,
    "ThrottlingException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "LimitExceededException": grpc.StatusCode.RESOURCE_EXHAUSTED,
}
"""gRPC status of an AWS error type; other client errors are INVALID_ARGUMENT, internal
(transient) ones UNAVAILABLE."""

_log = logging.getLogger("strongroom.k8s")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def grpc_code(error: StrongroomError) -> grpc.StatusCode:
    """The gRPC status code a key service error is answered with."""
    if isinstance(error, AuthError):
        return grpc.StatusCode.UNAUTHENTICATED
    code = _CODES.get(error.aws_type)
    if code is not None:
        return code
    if isinstance(error, ClientError):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.UNAVAILABLE


class _Aborted(Exception):
    """A call ends with this gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str, error: str) -> None:
        super().__init__(message)
        self.code, self.message, self.error = code, message, error


class KmsServicer:
    """Serves Status, Encrypt and Decrypt from a :class:`KmsPlugin`."""

    def __init__(
        self,
        plugin: KmsPlugin,
        metrics: PluginMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plugin = plugin
        self._metrics = metrics
        self._clock = clock

    def _deadline(self, context: grpc.ServicerContext) -> float | None:
        remaining = context.time_remaining()
        return None if remaining is None else self._clock() + remaining

    def _serve(
        self,
        method: str,
        uid: str,
        context: grpc.ServicerContext,
        fn: Callable[[float | None], tuple[Resp, dict[str, object]]],
    ) -> Resp:
        started = time.perf_counter()
        fields: dict[str, object] = {"method": method}
        if uid:
            fields["uid"] = uid
        try:
            try:
                response, extra = fn(self._deadline(context))
            except StrongroomError as exc:
                text = f"{exc.aws_type}: {exc.message}" if exc.message else exc.aws_type
                raise _Aborted(grpc_code(exc), text, exc.aws_type) from None
            except Exception:
                _log.exception("internal error", extra={"fields": dict(fields)})
                raise _Aborted(grpc.StatusCode.INTERNAL, "internal error", "Internal") from None
        except _Aborted as abort:
            fields.update(code=abort.code.name, error=abort.error)
            self._finish(method, fields, started, logging.WARNING)
            context.abort(abort.code, abort.message)
        fields.update(extra, code="OK")
        self._finish(method, fields, started, logging.DEBUG if method == "Status" else logging.INFO)
        return response

    def _finish(self, method: str, fields: dict[str, object], started: float, level: int) -> None:
        elapsed = time.perf_counter() - started
        fields["latency_ms"] = round(elapsed * 1000, 3)
        _log.log(level, "rpc", extra={"fields": fields})
        if self._metrics is not None:
            self._metrics.observe(method, str(fields["code"]), elapsed)

    def status(
        self, request: api_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> api_pb2.StatusResponse:
        """``Status``: version ``v2``, healthz and the current key_id."""

        def run(deadline: float | None) -> tuple[api_pb2.StatusResponse, dict[str, object]]:
            status = self.plugin.status(deadline)
            response = api_pb2.StatusResponse(
                version=API_VERSION, healthz=status.healthz, key_id=status.key_id
            )
            return response, {"healthz": status.healthz, "key_id": status.key_id}

        return self._serve("Status", "", context, run)

    def encrypt(
        self, request: api_pb2.EncryptRequest, context: grpc.ServicerContext
    ) -> api_pb2.EncryptResponse:
        """``Encrypt``: the DEK seed under the KMS key."""

        def run(deadline: float | None) -> tuple[api_pb2.EncryptResponse, dict[str, object]]:
            result = self.plugin.encrypt(request.plaintext, deadline)
            response = api_pb2.EncryptResponse(
                ciphertext=result.ciphertext,
                key_id=result.key_id,
                annotations=dict(result.annotations),
            )
            return response, {"key_id": result.key_id}

        return self._serve("Encrypt", request.uid, context, run)

    def decrypt(
        self, request: api_pb2.DecryptRequest, context: grpc.ServicerContext
    ) -> api_pb2.DecryptResponse:
        """``Decrypt``: the DEK seed back, under any earlier key version."""

        def run(deadline: float | None) -> tuple[api_pb2.DecryptResponse, dict[str, object]]:
            plaintext = self.plugin.decrypt(
                request.ciphertext, request.key_id, dict(request.annotations), deadline
            )
            return api_pb2.DecryptResponse(plaintext=plaintext), {"key_id": request.key_id}

        return self._serve("Decrypt", request.uid, context, run)

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler that routes ``/v2.KeyManagementService/*`` here."""
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Status": grpc.unary_unary_rpc_method_handler(
                    self.status,
                    request_deserializer=api_pb2.StatusRequest.FromString,
                    response_serializer=api_pb2.StatusResponse.SerializeToString,
                ),
                "Encrypt": grpc.unary_unary_rpc_method_handler(
                    self.encrypt,
                    request_deserializer=api_pb2.EncryptRequest.FromString,
                    response_serializer=api_pb2.EncryptResponse.SerializeToString,
                ),
                "Decrypt": grpc.unary_unary_rpc_method_handler(
                    self.decrypt,
                    request_deserializer=api_pb2.DecryptRequest.FromString,
                    response_serializer=api_pb2.DecryptResponse.SerializeToString,
                ),
            },
        )


def settle_for_serving() -> None:
    """Tune this process for short calls once it has started (the plugin's own process).

    Two things made the tail of a call: the audit flusher's thread hashing a batch into
    the chain in pure Python holds the GIL for the default switch interval (5 ms) while a
    serving thread waits, so it is handed back every millisecond (as the KMS API's
    workers do); and full collections walked every object start-up made (grpc, protobuf,
    the key service's modules and caches), so those are frozen out of the collector's
    sight, leaving each collection only what calls allocate since.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    gc.collect()
    gc.freeze()


def parse_listen(url: str) -> Path:
    """The socket path of ``unix:///abs/path.sock`` (or ``unix:/abs/path.sock``)."""
    for prefix in ("unix://", "unix:"):
        if url.startswith(prefix):
            path = url[len(prefix) :]
            break
    else:
        raise ValidationError(f"--listen must be unix:///ABSOLUTE/PATH, not {url!r}")
    if not path.startswith("/"):
        raise ValidationError(f"the socket path must be absolute: {url!r}")
    if len(path.encode("utf-8")) > MAX_UNIX_PATH_BYTES:
        raise ValidationError(f"the socket path is longer than {MAX_UNIX_PATH_BYTES} bytes")
    return Path(path)


def clear_stale_socket(path: Path) -> None:
    """Remove a socket file nobody listens on; refuse a live socket or another file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ValidationError(f"{path} exists and is not a socket: refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise
    else:
        raise ValidationError(f"another process is listening on {path}")
    finally:
        probe.close()
    path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """Limits of the plugin's socket (kube-apiserver keeps one or two connections).

    ``max_connections`` open at once (more are closed at once), a deadline for a new
    connection's HTTP/2 handshake and settings, connections idle longer than
    ``idle_timeout_s`` closed (gracefully, with GOAWAY: the client reconnects), at most
    ``max_concurrent_rpcs`` calls in flight (more fail at once with RESOURCE_EXHAUSTED
    instead of queueing without bound) and ``max_streams`` per connection.
    """

    max_connections: int = 64
    handshake_timeout_s: float = 5.0
    idle_timeout_s: float = 300.0
    max_concurrent_rpcs: int = 256
    max_streams: int = 100

    def grpc_options(self) -> list[tuple[str, int]]:
        """The gRPC core channel arguments for these limits."""
        deadline_ms = int(self.handshake_timeout_s * 1000)
        return [
            ("grpc.max_allowed_incoming_connections", self.max_connections),
            ("grpc.server_handshake_timeout_ms", deadline_ms),
            ("grpc.http2.settings_timeout", deadline_ms),
            ("grpc.max_connection_idle_ms", int(self.idle_timeout_s * 1000)),
            ("grpc.max_concurrent_streams", self.max_streams),
        ]


class PluginServer:
    """The gRPC server on one unix socket; :meth:`start`, then :meth:`stop`."""

    def __init__(
        self,
        servicer: KmsServicer,
        socket_path: Path,
        *,
        workers: int = 16,
        limits: SocketLimits | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.limits = limits or SocketLimits()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="k8s-kms")
        self._server = grpc.server(
            self._executor,
            handlers=[servicer.handler()],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                *self.limits.grpc_options(),
            ],
            maximum_concurrent_rpcs=self.limits.max_concurrent_rpcs,
        )
        self._inode: int | None = None

    @property
    def target(self) -> str:
        """``unix://<socket path>``, as a client dials it."""
        return f"unix://{self.socket_path}"

    def start(self) -> None:
        """Bind the socket (mode 0600, its directory created 0700 if missing) and serve."""
        self.socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        clear_stale_socket(self.socket_path)
        previous = os.umask(0o177)  # the socket is born 0600: no window for other users
        try:
            self._server.add_insecure_port(self.target)
            self._server.start()
        finally:
            os.umask(previous)
        os.chmod(self.socket_path, SOCKET_MODE)
        self._inode = self.socket_path.stat().st_ino
        _log.info("listening", extra={"fields": {"socket": str(self.socket_path)}})

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout``); return whether it stopped."""
        timed_out = self._server.wait_for_termination(timeout)
        return not timed_out

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls, let those in flight finish (``grace`` s), remove the socket."""
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=True)
        with contextlib.suppress(FileNotFoundError):
            if self._inode is not None and self.socket_path.stat().st_ino == self._inode:
                self.socket_path.unlink()
        _log.info("stopped", extra={"fields": {"socket": str(self.socket_path)}})
