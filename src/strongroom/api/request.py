"""One API request as the handler sees it: read once from the ASGI scope and body.

The header pass lowercases names and picks out what routing needs (content type, target,
declared length); the handler then runs off the event loop with an
:class:`ApiRequest` (never changed once built) and never touches the ASGI objects.
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


def head_from(headers: list[tuple[str, str]], by_name: dict[str, list[str]]) -> RequestHead:
    """The :class:`RequestHead` of headers already read as text (lowercase names).

    ``by_name`` holds each name's values in the order received. The server's protocol
    reads headers this way as the parser hands them over (one pass instead of two).
    """
    # the last value of each: three lookups after the loop cost less than comparing
    # every header's name with three names inside it
    found = by_name.get("content-type")
    content_type = found[-1].partition(";")[0].strip().lower() if found else ""
    found = by_name.get("x-amz-target")
    target = found[-1].strip() if found else ""
    found = by_name.get("content-length")
    length = found[-1].strip() if found else ""
    return RequestHead(tuple(headers), content_type, target, length, by_name)


@dataclass(slots=True)
class ApiRequest:
    """What the synchronous handler needs from one HTTP request."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    content_type: str
    target: str
    request_id: str
    started: float
    client: str
    by_name: dict[str, list[str]] | None = None
    """:attr:`RequestHead.by_name`, when the request was read through one."""

    @classmethod
    def of(
        cls, scope: Scope, head: RequestHead, body: bytes, request_id: str, started: float
    ) -> ApiRequest:
        """The request of ``scope`` with its ``head`` and ``body`` already read."""
        client = scope.get("client")
        return cls(
            method=scope["method"],
            path=(scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1"),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=head.headers,
            body=body,
            content_type=head.content_type,
            target=head.target,
            request_id=request_id,
            started=started,
            client=f"{client[0]}:{client[1]}" if client else "",
            by_name=head.by_name,
        )


# Request ids are made 256 at a time from one os.urandom call (one system call and one
# hex conversion per batch); a forked child starts with none of its parent's.
_ID_BATCH = 256
_ids: list[str] = []
_VARIANT = {f"{d:x}": f"{(d & 3) | 8:x}" for d in range(16)}
os.register_at_fork(after_in_child=_ids.clear)


def new_request_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` but a tenth of the cost."""
    while True:
        try:
            return _ids.pop()  # atomic: pool threads take ids too
        except IndexError:
            _ids.extend(_id_batch())


def _id_batch() -> list[str]:
    text = os.urandom(16 * _ID_BATCH).hex()
    variant = _VARIANT
    return [
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant[h[16]]}{h[17:20]}-{h[20:32]}"
        for h in (text[i : i + 32] for i in range(0, len(text), 32))
    ]
