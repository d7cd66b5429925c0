"""The ASGI application: AWS KMS over JSON 1.1 with SigV4, plus health, readiness and metrics.

Routes::

    POST /        X-Amz-Target: TrentService.<Op>, application/x-amz-json-1.1 -> KMS
    POST /        X-Amz-Target: StrongroomUserKeys.<Op> (same protocol and signing) ->
                  Strongroom's user-key operations, if the backend has them
    POST /        X-Amz-Target: StrongroomMesh.<Op> (same protocol and signing) ->
                  the mesh authority (SVIDs for remote agents), if the backend has it
    POST /        application/x-www-form-urlencoded, Action=GetCallerIdentity -> STS (XML)
    GET  /healthz 200 while the process serves (no authentication)
    GET  /readyz  200 if the readiness callable says so, else 503 (no authentication)
    GET  /metrics Prometheus text format (no authentication: scrapers do not sign; the
                  metrics hold counts and latencies by operation, nothing about keys)

Every response carries ``x-amzn-RequestId``. Errors are ``{"__type", "message"}`` with the
HTTP status of the error class; anything unexpected is a 500 ``KMSInternalException``
with a generic message, the traceback going to the log under the request id. One JSON
access log line per API request goes to the ``strongroom.api.access`` logger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from strongroom.api import sts
from strongroom.api.asgi import Receive, Scope, Send, lifespan, read_body, send_response
from strongroom.api.backend import KmsBackend, MeshBackend, UserKeyBackend
from strongroom.api.json_body import decode_body, encode_body, error_body
from strongroom.api.metrics import ApiMetrics
from strongroom.api.request import ApiRequest, head_of, new_request_id, read_head
from strongroom.api.shapes import (
    MESH_MODEL_PATH,
    SERIALIZATION,
    USER_KEYS_MODEL_PATH,
    ShapeCodec,
)
from strongroom.api.sigv4 import INVALID, SigV4Verifier, Verified
from strongroom.errors import AuthError, InternalError, ProtocolError, StrongroomError
from strongroom.kms.caller import Caller

# The largest valid KMS request is a 32 KiB key policy (PutKeyPolicy/CreateKey), which
# JSON escaping can grow up to six-fold; every other member is at most a few KiB.
MAX_REQUEST_BYTES = 256 * 1024
USER_KEYS_MAX_REQUEST_BYTES = 2 * 1024 * 1024
"""Requests of the user-key operations: ``CreateUserKeys`` names up to 10,000 user ids."""
JSON_CONTENT_TYPES = frozenset({"application/x-amz-json-1.1", "application/x-amz-json-1.0"})
JSON_CONTENT_TYPE = b"application/x-amz-json-1.1"
KMS_SERVICE = "kms"
STS_SERVICE = "sts"
STS_AUTH_STATUS = 403  # STS answers failed authentication with 403, KMS with 400
UNKNOWN_OPERATION = "UnknownOperationException"
CALLER_MEMO_SIZE = 4096
INTERNAL_MESSAGE = "An internal error occurred. Retry the request."

_log = logging.getLogger("strongroom.api")
_access_log = logging.getLogger("strongroom.api.access")


ExtensionCall = Callable[[Caller, str, dict[str, Any], str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Extension:
    """Strongroom operations beside AWS's: their own target prefix, model and backend call."""

    codec: ShapeCodec
    prefix: str
    call: ExtensionCall
    max_request_bytes: int


def _extensions(backend: KmsBackend, max_request_bytes: int) -> tuple[_Extension, ...]:
    """The extension services ``backend`` runs (user keys, the mesh authority)."""
    found = []
    if isinstance(backend, UserKeyBackend):
        codec = ShapeCodec.load(USER_KEYS_MODEL_PATH)
        limit = max(max_request_bytes, USER_KEYS_MAX_REQUEST_BYTES)
        found.append(_Extension(codec, codec.target_prefix + ".", backend.call_user_keys, limit))
    if isinstance(backend, MeshBackend):
        codec = ShapeCodec.load(MESH_MODEL_PATH)
        found.append(
            _Extension(codec, codec.target_prefix + ".", backend.call_mesh, max_request_bytes)
        )
    return tuple(found)


@dataclass(slots=True)
class _Outcome:
    """The response being built, and what the access log and metrics say about it."""

    status: int = 200
    body: bytes = b""
    content_type: bytes = JSON_CONTENT_TYPE
    operation: str = "unknown"
    error: str | None = None
    access_key_id: str = ""


class KmsApi:
    """The ASGI callable; build it with :func:`create_app`."""

    def __init__(
        self,
        backend: KmsBackend,
        clock: Callable[[], float],
        registry: CollectorRegistry,
        readiness: Callable[[], bool] | None,
        max_request_bytes: int,
        offload: bool,
        inline_operations: frozenset[str] = frozenset(),
    ) -> None:
        self._backend = backend
        self._codec = ShapeCodec.load()
        self._verifier = SigV4Verifier(backend.lookup_access_key, clock)
        self._metrics = ApiMetrics(registry)
        self._readiness = readiness
        self._max_request_bytes = max_request_bytes
        self._offload = offload
        self._prefix = self._codec.target_prefix + "."
        self._inline_targets = frozenset(self._prefix + op for op in inline_operations)
        self._inline_limits: dict[bytes, int] = {}
        if offload:
            for target in self._inline_targets:
                self._inline_limits[target.encode("ascii")] = max_request_bytes
        self._callers: dict[tuple[Caller, str, str], Caller] = {}
        # Strongroom's own operations: their own target prefixes, names disjoint from AWS's
        self._extensions = _extensions(backend, max_request_bytes)
        self._extension_of: dict[str, _Extension] = {}
        for extension in self._extensions:
            for name in extension.codec.operations:
                if name in self._codec.operations or name in self._extension_of:
                    raise ValueError(f"operation {name} is defined twice")
                self._extension_of[name] = extension

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        if path == "/" and method == "POST":
            await self._api(scope, receive, send)
        elif path == "/healthz" and method in ("GET", "HEAD"):
            await send_response(
                send, 200, b'{"status":"ok"}', b"application/json", new_request_id()
            )
        elif path == "/readyz" and method in ("GET", "HEAD"):
            ready = await self._run(self._ready)
            body = b'{"status":"ready"}' if ready else b'{"status":"not ready"}'
            await send_response(
                send, 200 if ready else 503, body, b"application/json", new_request_id()
            )
        elif path == "/metrics" and method == "GET":
            body = self._metrics.render()
            await send_response(
                send, 200, body, CONTENT_TYPE_LATEST.encode("ascii"), new_request_id()
            )
        else:
            body = error_body(UNKNOWN_OPERATION, "No such resource.")
            await send_response(send, 404, body, JSON_CONTENT_TYPE, new_request_id())

    def _ready(self) -> bool:
        if self._readiness is None:
            return True
        try:
            return bool(self._readiness())
        except Exception:
            _log.exception("readiness check failed")
            return False

    async def _run(self, func: Callable[[], Any]) -> Any:
        if self._offload:
            return await asyncio.get_running_loop().run_in_executor(None, func)
        return func()

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        head = read_head(scope)
        limit = self._max_request_bytes
        for extension in self._extensions:
            if head.target.startswith(extension.prefix):
                limit = extension.max_request_bytes
        oversized = head.declares_more_than(limit)
        body = b""
        if not oversized:
            received = await read_body(receive, limit)
            if received is None:
                return  # the client went away mid-request: nobody to answer
            body = received
            oversized = len(body) > limit
        request = ApiRequest.of(scope, head, body, request_id, started)
        if oversized:
            outcome = self._too_large(request, limit)
        elif self._offload and request.target not in self._inline_targets:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(None, self._handle, request)
        else:
            outcome = self._handle(request)
        await send_response(send, outcome.status, outcome.body, outcome.content_type, request_id)

    # -- the server's inline path (no ASGI) -----------------------------------------------

    def inline_limit(self, target: bytes) -> int:
        """The body limit of ``POST /`` with this ``X-Amz-Target`` if it may be served inline.

        ``0`` if not: the target is unknown, or runs in the thread pool. The server's
        protocol answers such requests through :meth:`serve_inline`, without an ASGI
        scope, task or message per request; everything else goes through ``__call__``.
        """
        return self._inline_limits.get(target, 0)

    def serve_inline(
        self,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        path: bytes,
        query: bytes,
        client: str,
    ) -> tuple[int, bytes, bytes, str]:
        """Serve one ``POST /`` that :meth:`inline_limit` admitted, on the calling thread.

        ``headers`` have lowercase names; the body is whole and within the limit. Returns
        status, body, content type and request id. Authentication, dispatch, metrics and
        the access log are exactly those of the ASGI path.
        """
        started = time.perf_counter()
        request_id = new_request_id()
        head = head_of(headers)
        request = ApiRequest(
            "POST",
            path.decode("latin-1"),
            query.decode("latin-1"),
            head.headers,
            body,
            head.content_type,
            head.target,
            request_id,
            started,
            client,
        )
        outcome = self._handle(request)
        return outcome.status, outcome.body, outcome.content_type, request_id

    def _too_large(self, request: ApiRequest, limit: int) -> _Outcome:
        outcome = _Outcome(operation=self._operation_label(request))
        error = ProtocolError(
            "RequestEntityTooLargeException",
            f"The request body is larger than {limit} bytes.",
            http_status=413,
        )
        self._fail(request, outcome, error)
        self._finish(request, outcome)
        return outcome

    def _operation_label(self, request: ApiRequest) -> str:
        if request.content_type == sts.FORM_CONTENT_TYPE:
            return "GetCallerIdentity"
        if request.target.startswith(self._prefix):
            operation = request.target[len(self._prefix) :]
            if operation in self._codec.operations:
                return operation
            return "unknown"
        for extension in self._extensions:
            if request.target.startswith(extension.prefix):
                operation = request.target[len(extension.prefix) :]
                if operation in extension.codec.operations:
                    return operation
        return "unknown"

    def _handle(self, request: ApiRequest) -> _Outcome:
        """Authenticate, dispatch and encode one API request (runs off the event loop)."""
        outcome = _Outcome(operation=self._operation_label(request))
        try:
            if request.content_type == sts.FORM_CONTENT_TYPE:
                self._sts(request, outcome)
            else:
                self._kms(request, outcome)
        except StrongroomError as err:
            self._fail(request, outcome, err)
        except Exception:
            _log.exception("unexpected error serving request %s", request.request_id)
            self._fail(request, outcome, InternalError(INTERNAL_MESSAGE))
        self._finish(request, outcome)
        return outcome

    def _authenticate(self, request: ApiRequest, service: str, outcome: _Outcome) -> Verified:
        verified = self._verifier.verify(request)
        outcome.access_key_id = verified.access_key_id
        if verified.service != service:
            raise AuthError(
                INVALID, f"Credential should be scoped to correct service: '{service}'."
            )
        return verified

    def _kms(self, request: ApiRequest, outcome: _Outcome) -> None:
        verified = self._authenticate(request, KMS_SERVICE, outcome)
        operation = outcome.operation
        if operation == "unknown" or request.content_type not in JSON_CONTENT_TYPES:
            raise ProtocolError(
                UNKNOWN_OPERATION,
                "Send POST / with Content-Type application/x-amz-json-1.1 and "
                f"X-Amz-Target {self._prefix}<Operation> naming a KMS operation.",
            )
        try:
            parsed = decode_body(request.body) if request.body.strip() else {}
        except (ValueError, RecursionError):
            raise ProtocolError(SERIALIZATION, "The request body is not valid JSON.") from None
        extension = self._extension_of.get(operation)
        if extension is not None:
            codec = extension.codec
            decoded = codec.decode_request(operation, parsed)
            response = extension.call(
                self._caller(verified), operation, decoded, request.request_id
            )
            encoded = codec.encode_response(operation, response)
        else:
            decoded = self._codec.decode_request(operation, parsed)
            caller = self._caller(verified)
            response = self._backend.call(caller, operation, decoded, request.request_id)
            encoded = self._codec.encode_response(operation, response)
        outcome.body = encode_body(encoded)

    def _caller(self, verified: Verified) -> Caller:
        """The key's principal in the signed region (memoised: ``replace`` is slow)."""
        principal = verified.access_key.caller
        memo_key = (principal, verified.region, verified.access_key_id)
        caller = self._callers.get(memo_key)
        if caller is None:
            if len(self._callers) >= CALLER_MEMO_SIZE:
                self._callers.clear()
            caller = replace(
                principal, region=verified.region, access_key_id=verified.access_key_id
            )
            self._callers[memo_key] = caller
        return caller

    def _sts(self, request: ApiRequest, outcome: _Outcome) -> None:
        outcome.content_type = sts.XML_CONTENT_TYPE.encode("ascii")
        verified = self._authenticate(request, STS_SERVICE, outcome)
        try:
            form = request.body.decode("utf-8") or request.query
        except UnicodeDecodeError:
            raise ProtocolError("MalformedQueryString", "The request is not valid UTF-8.") from None
        sts.parse_action(form)
        caller = replace(verified.access_key.caller, access_key_id=verified.access_key_id)
        outcome.body = sts.caller_identity_xml(caller, request.request_id)

    def _fail(self, request: ApiRequest, outcome: _Outcome, err: StrongroomError) -> None:
        aws_type, status = err.aws_type, err.http_status
        if isinstance(err, AuthError) and request.content_type == sts.FORM_CONTENT_TYPE:
            status = STS_AUTH_STATUS
        message = str(err)
        if isinstance(err, InternalError) and status >= 500:
            record = getattr(err, "record", "")  # a tampered store record: which one
            _log.error(
                "internal error serving request %s: %s: %s%s",
                request.request_id,
                aws_type,
                message,
                f" (record {record})" if record else "",
            )
            message = INTERNAL_MESSAGE
        outcome.status, outcome.error = status, aws_type
        if request.content_type == sts.FORM_CONTENT_TYPE:
            outcome.content_type = sts.XML_CONTENT_TYPE.encode("ascii")
            outcome.body = sts.error_xml(aws_type, message, request.request_id, status)
        else:
            outcome.content_type = JSON_CONTENT_TYPE
            outcome.body = error_body(aws_type, message)

    def _finish(self, request: ApiRequest, outcome: _Outcome) -> None:
        elapsed = time.perf_counter() - request.started
        self._metrics.observe_soon(outcome.operation, outcome.status, outcome.error, elapsed)
        if _access_log.isEnabledFor(logging.INFO):
            _access_log.info(
                json.dumps(
                    {
                        "request_id": request.request_id,
                        "operation": outcome.operation,
                        "status": outcome.status,
                        "error": outcome.error,
                        "latency_ms": round(elapsed * 1000, 3),
                        "access_key_id": outcome.access_key_id,
                        "client": request.client,
                    },
                    separators=(",", ":"),
                )
            )


def create_app(
    backend: KmsBackend,
    clock: Callable[[], float] = time.time,
    registry: CollectorRegistry | None = None,
    readiness: Callable[[], bool] | None = None,
    *,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    offload: bool = True,
    inline_operations: frozenset[str] = frozenset(),
) -> KmsApi:
    """Build the ASGI app serving the KMS API of ``backend``.

    ``clock`` is the time SigV4 timestamps are checked against; ``registry`` the Prometheus
    registry the metrics go to (a new private one if ``None``); ``readiness`` is called by
    ``/readyz``. With ``offload`` (the default) the backend runs in the event loop's thread
    pool so slow store I/O does not stall other requests; operations named in
    ``inline_operations`` (``"Decrypt"``...) run on the event loop all the same, for a
    backend that answers them from memory faster than a thread hand-off (~100 us).
    """
    return KmsApi(
        backend,
        clock=clock,
        registry=registry if registry is not None else CollectorRegistry(auto_describe=True),
        readiness=readiness,
        max_request_bytes=max_request_bytes,
        offload=offload,
        inline_operations=inline_operations,
    )
