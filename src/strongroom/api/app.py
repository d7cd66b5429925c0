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

Every response carries ``x-amzn-RequestId``. What an API request gets (authentication,
dispatch, errors, metrics, the access log) is :class:`~strongroom.api.handler.ApiHandler`'s,
the same on the ASGI path and on the server's inline path (:meth:`KmsApi.serve_head`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from strongroom.api.asgi import Receive, Scope, Send, lifespan, read_body, send_response
from strongroom.api.backend import KmsBackend
from strongroom.api.extensions import extensions_of
from strongroom.api.handler import JSON_CONTENT_TYPE, UNKNOWN_OPERATION, ApiHandler
from strongroom.api.json_body import error_body
from strongroom.api.metrics import ApiMetrics
from strongroom.api.request import (
    ApiRequest,
    RequestHead,
    head_from,
    head_of,
    new_request_id,
    read_head,
)
from strongroom.api.shapes import ShapeCodec
from strongroom.api.sigv4 import SigV4Verifier

# The largest valid KMS request is a 32 KiB key policy (PutKeyPolicy/CreateKey), which
# JSON escaping can grow up to six-fold; every other member is at most a few KiB.
MAX_REQUEST_BYTES = 256 * 1024

_log = logging.getLogger("strongroom.api")


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
        codec = ShapeCodec.load()
        self.handler = ApiHandler(
            backend,
            codec,
            SigV4Verifier(backend.lookup_access_key, clock),
            ApiMetrics(registry),
            extensions_of(backend, max_request_bytes),
        )
        self._readiness = readiness
        self._max_request_bytes = max_request_bytes
        self._offload = offload
        prefix = self.handler.prefix
        self._inline_targets = frozenset(prefix + op for op in inline_operations)
        self._inline_limits: dict[str, int] = {}
        if offload:
            for target in self._inline_targets:
                self._inline_limits[target] = max_request_bytes

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
            body = self.handler.metrics.render()
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
        handler = self.handler
        limit = self._max_request_bytes
        for extension in handler.extensions:
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
            outcome = handler.too_large(request, limit)
        elif self._offload and request.target not in self._inline_targets:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(None, handler.handle, request)
        else:
            outcome = handler.handle(request)
        await send_response(send, outcome.status, outcome.body, outcome.content_type, request_id)

    # -- the server's inline path (no ASGI) -----------------------------------------------

    def inline_head(
        self, headers: list[tuple[str, str]], by_name: dict[str, list[str]]
    ) -> RequestHead | None:
        """The head of a ``POST /`` with these headers if it may be served inline, else ``None``.

        ``None`` if its ``X-Amz-Target`` is unknown or runs in the thread pool, or its body
        is chunked, not declared or over the limit. The server's protocol answers the
        others through :meth:`serve_head`, without an ASGI scope, task or message per
        request; everything else goes through ``__call__``. ``headers`` are text
        (latin-1) with lowercase names and ``by_name`` each name's values in order, as
        :func:`~strongroom.api.request.head_from` takes them.
        """
        head = head_from(headers, by_name)
        limit = self._inline_limits.get(head.target)
        length = head.length
        if (
            limit is None
            or "transfer-encoding" in head.by_name
            or not (length.isascii() and length.isdigit() and int(length) <= limit)
        ):
            return None
        return head

    def serve_head(
        self, head: RequestHead, body: bytes, url: bytes, client: str
    ) -> tuple[int, bytes, bytes, str]:
        """Serve one ``POST`` whose head :meth:`inline_head` admitted, on the calling thread.

        ``url`` is ``/`` or ``/?query``; the body is whole and within the limit. Returns
        status, body, content type and request id. Authentication, dispatch, metrics and
        the access log are exactly those of the ASGI path.
        """
        started = time.perf_counter()
        request_id = new_request_id()
        if type(head) is ApiRequest:  # what inline_head made: one object per request
            request = head
            # ApiRequest.fill, inlined (a call costs more than the four stores)
            request.body = body
            request.request_id = request_id
            request.started = started
            request.client = client
        else:
            request = ApiRequest(
                head.headers,
                head.content_type,
                head.target,
                head.length,
                head.by_name,
                "POST",
                "/",
                "",
                body,
                request_id,
                started,
                client,
            )
        if url != b"/":  # what every SDK sends is "/": no split, no decoding
            raw_path, _, raw_query = url.partition(b"?")
            request.path, request.query = raw_path.decode("latin-1"), raw_query.decode("latin-1")
        outcome = self.handler.handle(request)
        return outcome.status, outcome.body, outcome.content_type, request_id

    def serve_inline(
        self, headers: list[tuple[bytes, bytes]], body: bytes, url: bytes, client: str
    ) -> tuple[int, bytes, bytes, str]:
        """:meth:`serve_head` of raw headers (for fronts other than the server's own)."""
        return self.serve_head(head_of(headers), body, url, client)


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
