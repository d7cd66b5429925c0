"""The server's HTTP protocol with an inline path: hot API calls answered from the parser.

uvicorn turns every request into an ASGI scope, a request/response cycle object, an
``asyncio.Event``, a task and four ASGI messages; for a Decrypt that answers from memory
that machinery costs more CPU than the key service itself. :class:`InlineHttpProtocol`
answers a ``POST /`` whose ``X-Amz-Target`` the app serves inline (see
:meth:`strongroom.api.KmsApi.inline_head`) straight from httptools' callbacks: the head
and body are collected as they are parsed, and once the message is complete the app's
synchronous :meth:`~strongroom.api.KmsApi.serve_head` runs and the whole response goes
out in one write. Everything else (other paths and operations, ``Expect: 100-continue``,
bodies without a ``Content-Length`` or over the limit, requests pipelined behind one still
being served, connections whose client is not reading its answers) takes uvicorn's path
unchanged.

The connection guard applies to both paths alike: the request deadline, the head size
limit, the per-connection request cap, admission and eviction all live in
:class:`GuardedHttpToolsProtocol`, whose callbacks run first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from strongroom.server.guard import ConnectionGuard
from strongroom.server.guarded_protocol import GuardedHttpToolsProtocol
from strongroom.server.http_protocol import CoalescingTransport

if TYPE_CHECKING:
    from strongroom.api import KmsApi
    from strongroom.api.request import RequestHead

_log = logging.getLogger("strongroom.server")
_OWS = b" \t"
_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


InlineServe = Callable[["RequestHead", bytes, bytes, str], tuple[int, bytes, bytes, str]]
""":meth:`strongroom.api.KmsApi.serve_head`: head, body, URL, client -> status, body,
content type, request id."""


class InlineHttpProtocol(GuardedHttpToolsProtocol):
    """A guarded connection whose hot API requests skip the ASGI machinery (``app``)."""

    inline_head: Callable[[list[tuple[bytes, bytes]]], RequestHead | None] | None = None
    serve_head: InlineServe | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inline = False
        self._inline_body: list[bytes] = []
        self._head: RequestHead | None = None
        self._raw_transport: Any = None  # set by connection_made
        self._client_text = ""
        self._shutting_down = False

    @classmethod
    def bound_to(
        cls, guard: ConnectionGuard, app: KmsApi | None = None
    ) -> type[InlineHttpProtocol]:
        """A protocol class whose connections answer to ``guard`` and serve ``app`` inline."""
        served = (
            {} if app is None else {"inline_head": app.inline_head, "serve_head": app.serve_head}
        )
        return type("InlineHttpProtocol", (cls,), {"guard": guard, **served})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Keep the unwrapped transport: an inline response is one write already."""
        self._raw_transport = transport
        super().connection_made(transport)
        if self.client:
            self._client_text = f"{self.client[0]}:{self.client[1]}"

    @property
    def inline_busy(self) -> bool:
        """Whether an inline request's head is in and its answer not yet sent."""
        return self._inline

    def shutdown(self) -> None:
        """Graceful shutdown: an inline request in flight is answered, then closed.

        Its answer carries ``Connection: close``, as uvicorn's own requests' do.
        """
        if self._inline:
            self._shutting_down = True
            return
        super().shutdown()

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """Start a request; its ASGI scope is only built if it takes uvicorn's path."""
        self._inline = False
        if self.serve_head is None:
            super().on_message_begin()
            return
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect a header as uvicorn does, but look for ``Expect`` once the head is in.

        The name lowercased, trailing blanks dropped (llhttp keeps them, RFC 9110 does not).
        """
        self.headers.append((name.lower(), value.rstrip(_OWS)))

    def on_headers_complete(self) -> None:
        """Choose the path: inline for a hot ``POST /``, else uvicorn's (with its scope)."""
        headers = self.headers
        if self.serve_head is None:
            self.expect_100_continue = _expects_continue(headers)
            super().on_headers_complete()
            return
        inline_head = self.inline_head
        parser = self.parser
        url = self.url
        if not (
            inline_head is None
            # a client that does not read its answers: uvicorn's path waits for the
            # socket to drain before it answers more (the inline path would not)
            or self.flow.write_paused
            or self.pipeline
            or (self.cycle is not None and not self.cycle.response_complete)
            or parser.get_method() != b"POST"
            or parser.get_http_version() != "1.1"
            or not (url == b"/" or url.startswith(b"/?"))
        ):
            head = inline_head(headers)
            if head is not None and not ("expect" in head.by_name and _expects_continue(headers)):
                self._inline = True
                self._head = head
                self._inline_body = []
                self._reading_head = False
                self._head_bytes = 0
                return
        expect = _expects_continue(headers)
        HttpToolsProtocol.on_message_begin(self)  # the scope, as uvicorn builds it
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """Collect an inline request's body (the parser holds it to ``Content-Length``)."""
        if self._inline:
            self._inline_body.append(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        """Serve an inline request now, on the loop, and send its response in one write."""
        if not self._inline:
            super().on_message_complete()
            return
        self._inline = False
        # The guard's part of a complete request (GuardedHttpToolsProtocol).
        self._reading_head = True
        self._requests += 1
        keep_alive = (
            self.parser.should_keep_alive()
            and self._requests < self.guard.limits.max_requests_per_connection
            and not self._shutting_down
        )
        serve = self.serve_head
        head = self._head
        assert serve is not None and head is not None
        body = b"".join(self._inline_body)
        self._inline_body = []
        self._head = None
        try:
            status, payload, content_type, request_id = serve(
                head, body, self.url, self._client_text
            )
        except Exception:
            self.guard.busy(self)
            _log.exception("unexpected error on the inline path")
            self._write(_ERROR)
            self.transport.close()
            return
        prefix = _prefixes.get((status, content_type))
        if prefix is None or prefix[0] is not self.server_state.default_headers:
            prefix = _prefix(status, content_type, self.server_state.default_headers)
        response = b"%s%d\r\nx-amzn-requestid: %s%s%s" % (
            prefix[1],
            len(payload),
            request_id.encode("ascii"),
            _KEEP_ALIVE if keep_alive else _CLOSE,
            payload,
        )
        self._write(response)
        self.server_state.total_requests += 1
        if not keep_alive or self._raw_transport.is_closing():
            self.guard.busy(self)  # no longer waiting for a request: not evictable
            if not keep_alive:
                self.transport.close()
            return
        # on_response_complete (GuardedHttpToolsProtocol), without a pipeline to start;
        # the request was served synchronously, so the guard never saw it busy: waiting()
        # alone moves the connection to the end of the waiting order with its new time
        flow = self.flow
        if flow.read_paused:
            flow.resume_reading()
        self._idle = True
        self.guard.waiting(self, self.loop.time())

    def _write(self, data: bytes) -> None:
        coalescing: CoalescingTransport = self.transport  # type: ignore[assignment]
        if coalescing.held is not None:
            coalescing.flush()  # a held response head of an earlier request goes first
        self._raw_transport.write(data)


# The part of an inline response before its length, per status and content type, made
# again when uvicorn replaces its default headers (the date, once a second).
_prefixes: dict[tuple[int, bytes], tuple[list[tuple[bytes, bytes]], bytes]] = {}
_KEEP_ALIVE = b"\r\n\r\n"
_CLOSE = b"\r\nconnection: close\r\n\r\n"


def _prefix(
    status: int, content_type: bytes, default_headers: list[tuple[bytes, bytes]]
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    head = [STATUS_LINE[status]]
    for name, value in default_headers:
        head += (name, b": ", value, b"\r\n")
    head += (b"content-type: ", content_type, b"\r\ncontent-length: ")
    made = (default_headers, b"".join(head))
    if len(_prefixes) > 64:
        _prefixes.clear()
    _prefixes[(status, content_type)] = made
    return made


def _expects_continue(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the headers ask for ``100 Continue`` (what uvicorn's ``on_header`` notes)."""
    return any(n == b"expect" and v.lower() == b"100-continue" for n, v in headers)
