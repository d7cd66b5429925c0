"""One API request as the handler sees it: read once from the ASGI scope and body.

The header pass lowercases names and picks out what routing needs (content type, target,
declared length); the handler then runs off the event loop with an
:class:`ApiRequest` (never changed once the handler has it) and never touches the ASGI
objects.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from strongroom.api.asgi import Scope


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building these two cost about 6 µs of every request. Nothing changes them once built.
@dataclass(slots=True)
class RequestHead:
    """The headers of a request, lowercased, and the three that routing reads."""

    headers: tuple[tuple[str, str], ...]
    content_type: str
    target: str
    length: str
    by_name: dict[str, list[str]]
    """Each header's values in the order received (what SigV4 reads)."""

    def declares_more_than(self, limit: int) -> bool:
        """Whether ``Content-Length`` is not a number up to ``limit`` (absent: ``False``)."""
        length = self.length
        return bool(length) and not (length.isascii() and length.isdigit() and int(length) <= limit)


def read_head(scope: Scope) -> RequestHead:
    """The :class:`RequestHead` of an ASGI HTTP ``scope``."""
    return head_of(scope["headers"])


# Header names seen before, as text: a dictionary hit costs less than decode and lower.
_NAMES: dict[bytes, str] = {}
_MAX_NAMES = 1024


def head_of(raw_headers: Iterable[tuple[bytes, bytes]]) -> RequestHead:
    """The :class:`RequestHead` of raw ``(name, value)`` header pairs."""
    headers = []
    by_name: dict[str, list[str]] = {}
    names = _NAMES
    for raw_name, raw_value in raw_headers:
        name = names.get(raw_name)
        if name is None:
            name = raw_name.decode("latin-1").lower()
            if len(names) < _MAX_NAMES:
                names[raw_name] = name
        value = raw_value.decode("latin-1")
        headers.append((name, value))
        found = by_name.get(name)
        if found is None:
            by_name[name] = [value]
        else:
            found.append(value)
    return head_from(headers, by_name)


# Content-Type values seen before and what routing reads of them: a dictionary hit costs
# less than partition, strip and lower. Bounded: when full, everything is forgotten.
_CONTENT_TYPES: dict[str, str] = {}
_MAX_CONTENT_TYPES = 256


def head_from(headers: list[tuple[str, str]], by_name: dict[str, list[str]]) -> RequestHead:
    """The :class:`RequestHead` of headers already read as text (lowercase names).

    ``by_name`` holds each name's values in the order received. The server's protocol
    reads headers this way as the parser hands them over (one pass instead of two). The
    head is an :class:`ApiRequest` waiting for its body (see :meth:`ApiRequest.fill`).
    """
    # the last value of each: three lookups after the loop cost less than comparing
    # every header's name with three names inside it
    found = by_name.get("content-type")
    if found:
        raw = found[-1]
        content_type = _CONTENT_TYPES.get(raw)
        if content_type is None:
            content_type = raw.partition(";")[0].strip().lower()
            if len(_CONTENT_TYPES) >= _MAX_CONTENT_TYPES:
                _CONTENT_TYPES.clear()
            _CONTENT_TYPES[raw] = content_type
    else:
        content_type = ""
    found = by_name.get("x-amz-target")
    target = found[-1].strip() if found else ""
    found = by_name.get("content-length")
    length = found[-1].strip() if found else ""
    return ApiRequest(tuple(headers), content_type, target, length, by_name)


@dataclass(slots=True)
class ApiRequest(RequestHead):
    """What the synchronous handler needs from one HTTP request.

    A :class:`RequestHead` with the rest of the request: the server's inline path builds
    the head as one of these and fills in the rest when the body is in (one object per
    request, not two).
    """

    method: str = "POST"
    path: str = "/"
    query: str = ""
    body: bytes = b""
    request_id: str = ""
    started: float = 0.0
    client: str = ""

    def fill(self, body: bytes, request_id: str, started: float, client: str) -> None:
        """Set what comes after the head (before the handler has the request)."""
        self.body = body
        self.request_id = request_id
        self.started = started
        self.client = client

    @classmethod
    def of(
        cls, scope: Scope, head: RequestHead, body: bytes, request_id: str, started: float
    ) -> ApiRequest:
        """The request of ``scope`` with its ``head`` and ``body`` already read."""
        client = scope.get("client")
        return cls(
            headers=head.headers,
            content_type=head.content_type,
            target=head.target,
            length=head.length,
            by_name=head.by_name,
            method=scope["method"],
            path=(scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1"),
            query=scope.get("query_string", b"").decode("latin-1"),
            body=body,
            request_id=request_id,
            started=started,
            client=f"{client[0]}:{client[1]}" if client else "",
        )


# Request ids are made 256 at a time from one os.urandom call (one system call), and the
# batch's text in a few C calls on the whole (hex, slice deletes, one split): a per-id
# f-string of six slices cost about 7,000 instructions an id, this about 1,300. A forked
# child starts with none of its parent's.
_ID_BATCH = 256
_ids: list[str] = []
# the version nibble (4) and the variant bits (10) of RFC 4122, set through byte tables
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT_1 = bytes((b & 0x3F) | 0x80 for b in range(256))
_ID_GAPS = b" " * (_ID_BATCH - 1)
os.register_at_fork(after_in_child=_ids.clear)


def new_request_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` but a tenth of the cost."""
    while True:
        try:
            return _ids.pop()  # atomic: pool threads take ids too
        except IndexError:
            _ids.extend(_id_batch())


def _id_batch() -> list[str]:
    raw = bytearray(os.urandom(16 * _ID_BATCH))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT_1)
    # 16 bytes as "xxxx-" * 7 + "xxxx", the ids one after another with "-" between them:
    # 40 characters an id, of which the dashes at 4, 29 and 34 are not the UUID's (deleted
    # from the right, so the earlier offsets hold) and the one at 36 of the 37 left parts ids
    text = bytearray(raw.hex("-", 2), "ascii")
    del text[34::40]
    del text[29::39]
    del text[4::38]
    text[36::37] = _ID_GAPS
    return text.decode("ascii").split()
