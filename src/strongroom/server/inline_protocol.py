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

Each header is read into text as the parser hands it over (lowercase name, value without
trailing blanks, its values by name): the app's head is built from those, without a
second pass, and uvicorn's path gets its bytes back from them (names are ASCII tokens and
latin-1 maps bytes to text one to one). The parser calls no Python at a message's
beginning, and puts the URL's pieces straight into a list.

The connection guard applies to both paths alike: the request deadline, the head size
limit, the per-connection request cap, admission and eviction all live in
:class:`GuardedHttpToolsProtocol`, whose callbacks run first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from strongroom.server.guard import ConnectionGuard
from strongroom.server.guarded_protocol import GuardedHttpToolsProtocol
from strongroom.server.http_protocol import CoalescingTransport, StepFlush, step_flush

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
InlineHead = Callable[[list[tuple[str, str]], dict[str, list[str]]], "RequestHead | None"]
""":meth:`strongroom.api.KmsApi.inline_head`: text headers and their values by name -> the
head if the request may be served inline."""


class _Callbacks:
    """What the parser calls back: the protocol's own methods, with two changes.

    The URL's pieces go straight into a list (a C method, no Python frame), and nothing
    marks a message's beginning (its state is reset when its head is taken).
    """

    __slots__ = ("on_body", "on_header", "on_headers_complete", "on_message_complete", "on_url")

    def __init__(self, protocol: InlineHttpProtocol) -> None:
        self.on_url = protocol._url.append
        self.on_header = protocol.on_header
        self.on_headers_complete = protocol.on_headers_complete
        self.on_body = protocol.on_body
        self.on_message_complete = protocol.on_message_complete


class InlineHttpProtocol(GuardedHttpToolsProtocol):
    """A guarded connection whose hot API requests skip the ASGI machinery (``app``)."""

    inline_head: InlineHead | None = None
    serve_head: InlineServe | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inline = False
        self._inline_body: list[bytes] = []
        self._head: RequestHead | None = None
        self._raw_transport: Any = None  # set by connection_made
        self._step: StepFlush = step_flush(self.loop)
        self._client_text = ""
        self._shutting_down = False
        # the head being read: URL pieces, text headers, their values by name; once the
        # head is in, a chunked body's trailers are uvicorn's (``_trailers``)
        self._url: list[bytes] = []
        self._pairs: list[tuple[str, str]] = []
        self._by_name: dict[str, list[str]] = {}
        self._trailers = False
        self._inline_url = b""
        self.parser = httptools.HttpRequestParser(_Callbacks(self))
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn
        self._max_requests = self.guard.limits.max_requests_per_connection
        self._guard_clients, self._guard_waiting = self.guard.books()

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

    def on_header(self, name: bytes, value: bytes) -> None:
        """Read a header as the API reads it: lowercase name and value as text.

        Trailing blanks are dropped (llhttp keeps them, RFC 9110 does not), as uvicorn
        does. Names are tokens (llhttp refuses others), so the text is ASCII and encodes
        back to uvicorn's bytes exactly.
        """
        try:
            text = _NAMES[name]
        except KeyError:  # a name not seen before (or past the cache's bound)
            text = _new_name(name)
        if self._trailers:  # a chunked body's trailer: uvicorn's, as uvicorn adds it
            self.headers.append((text.encode("latin-1"), value.rstrip(_OWS)))
            return
        value_text = value.decode("latin-1").rstrip(" \t")
        self._pairs.append((text, value_text))
        found = self._by_name.get(text)
        if found is None:
            self._by_name[text] = [value_text]
        else:
            found.append(value_text)

    def on_headers_complete(self) -> None:
        """Choose the path: inline for a hot ``POST /``, else uvicorn's (with its scope)."""
        pairs, by_name, parts = self._pairs, self._by_name, self._url
        self._pairs = []
        self._by_name = {}
        url = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        inline_head = self.inline_head
        if not (
            inline_head is None
            # a client that does not read its answers: uvicorn's path waits for the
            # socket to drain before it answers more (the inline path would not)
            or self.flow.write_paused
            or self.pipeline
            or (self.cycle is not None and not self.cycle.response_complete)
            or not (url == b"/" or url.startswith(b"/?"))
            or self.parser.get_method() != b"POST"
            # HTTP/1.1 only; its version string is formatted on each ask, but without a
            # Connection header llhttp keeps a request alive only if it is HTTP/1.1 (of
            # the versions it parses, the one whose major and minor are above zero)
            or not (
                ("connection" not in by_name and self.parser.should_keep_alive())
                or self.parser.get_http_version() == "1.1"
            )
        ):
            head = inline_head(pairs, by_name)
            if head is not None and not ("expect" in by_name and _expects_continue(by_name)):
                # the guard's part (GuardedHttpToolsProtocol.on_headers_complete)
                self._reading_head = False
                self._head_bytes = 0
                self._inline = True
                self._head = head
                self._inline_url = url
                return
        HttpToolsProtocol.on_message_begin(self)  # the scope, as uvicorn builds it
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
        self.url, self.headers, self.expect_100_continue = url, headers, _expects_continue(by_name)
        self.scope["headers"] = headers
        self._trailers = True
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
            self._trailers = False
            super().on_message_complete()
            return
        self._inline = False
        # The guard's part of a complete request (GuardedHttpToolsProtocol).
        self._reading_head = True
        self._requests += 1
        keep_alive = (
            self.parser.should_keep_alive()
            and self._requests < self._max_requests
            and not self._shutting_down
        )
        serve = self.serve_head
        head = self._head
        assert serve is not None and head is not None
        parts = self._inline_body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self._head = None
        try:
            status, payload, content_type, request_id = serve(
                head, body, self._inline_url, self._client_text
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
        length = len(payload)
        response = b"".join(
            (
                prefix[1],
                _LENGTHS.get(length) or b"%d" % length,
                b"\r\nx-amzn-requestid: ",
                request_id.encode(),  # ours: a UUID, ASCII
                _KEEP_ALIVE if keep_alive else _CLOSE,
                payload,
            )
        )
        coalescing: CoalescingTransport = self.transport  # type: ignore[assignment]
        raw = self._raw_transport
        if keep_alive:
            # out at the end of this loop step, with the other answers of the step (and
            # after anything held before it)
            if coalescing.held is None and not coalescing.queued:
                # CoalescingTransport.hold and StepFlush.hold, inlined (two frames)
                coalescing.held = response
                coalescing.queued = True
                step = self._step
                step.holding.append(coalescing)
                if not step.scheduled:
                    step.scheduled = True
                    self.loop.call_soon(step.flush)
            else:
                coalescing.hold(response)
        else:
            if coalescing.held is not None:
                coalescing.flush()  # a held response of an earlier request goes first
            raw.write(response)
        self.server_state.total_requests += 1
        if not keep_alive or raw.is_closing():
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
        # ConnectionGuard.waiting, without its call: newest at the end of the waiting order
        if self in self._guard_clients:
            waiting = self._guard_waiting
            waiting.pop(self, None)
            waiting[self] = self.loop.time()

    def _write(self, data: bytes) -> None:
        coalescing: CoalescingTransport = self.transport  # type: ignore[assignment]
        if coalescing.held is not None:
            coalescing.flush()  # a held response head of an earlier request goes first
        self._raw_transport.write(data)


# Header names seen before, as text: a dictionary hit costs less than lower and decode.
_NAMES: dict[bytes, str] = {}
_MAX_NAMES = 1024


def _new_name(name: bytes) -> str:
    text = name.lower().decode("latin-1")
    if len(_NAMES) < _MAX_NAMES:
        _NAMES[name] = text
    return text


# The part of an inline response before its length, per status and content type, made
# again when uvicorn replaces its default headers (the date, once a second).
_prefixes: dict[tuple[int, bytes], tuple[list[tuple[bytes, bytes]], bytes]] = {}
_LENGTHS = {length: b"%d" % length for length in range(4096)}
"""``Content-Length`` values of small bodies, formatted once."""
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


def _expects_continue(by_name: dict[str, list[str]]) -> bool:
    """Whether the headers ask for ``100 Continue`` (what uvicorn's ``on_header`` notes)."""
    values = by_name.get("expect")
    return values is not None and any(value.lower() == "100-continue" for value in values)
