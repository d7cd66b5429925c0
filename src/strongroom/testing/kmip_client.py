"""A minimal KMIP client over TLS built on Strongroom's own TTLV codec (tests and bench).

It speaks raw TTLV, so it drives any KMIP server the same way (``bench/databases.py`` runs
the same requests against Strongroom and PyKMIP's server).
"""

from __future__ import annotations

import socket
import ssl

from strongroom.kmip.messages import version_item
from strongroom.kmip.tags import Tag
from strongroom.kmip.ttlv import (
    Item,
    decode,
    encode,
    enumeration,
    integer,
    message_length,
    structure,
)
from strongroom.testing.kmip import ClientFiles


def request(version: tuple[int, int], *items: tuple[int, list[Item]]) -> bytes:
    """A Request Message with one batch item per ``(operation, payload items)``."""
    header = structure(
        Tag.REQUEST_HEADER, version_item(version), integer(Tag.BATCH_COUNT, len(items))
    )
    batch = [
        structure(
            Tag.BATCH_ITEM,
            enumeration(Tag.OPERATION, op),
            structure(Tag.REQUEST_PAYLOAD, *payload),
        )
        for op, payload in items
    ]
    return encode(structure(Tag.REQUEST_MESSAGE, header, *batch))


def connect(port: int, files: ClientFiles | None, ca: str) -> ssl.SSLSocket:
    """A TLS connection to ``127.0.0.1:port`` (with the client certificate of ``files``)."""
    context = ssl.create_default_context(cafile=ca)
    if files is not None:
        context.load_cert_chain(str(files.cert), str(files.key))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def read_message(sock: ssl.SSLSocket) -> Item:
    """Read and decode one whole message."""
    header = b""
    while len(header) < 8:
        chunk = sock.recv(8 - len(header))
        if not chunk:
            raise ConnectionError("closed")
        header += chunk
    body = b""
    need = message_length(header) - 8
    while len(body) < need:
        chunk = sock.recv(need - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return decode(header + body)


def results(message: Item) -> list[Item]:
    """The batch items of a response."""
    return list(message.find_all(Tag.BATCH_ITEM))


def status(batch_item: Item) -> tuple[int, int | None]:
    """``(result status, result reason or None)``."""
    reason = batch_item.find(Tag.RESULT_REASON)
    found = batch_item.find(Tag.RESULT_STATUS)
    assert found is not None
    return int(found.value), (int(reason.value) if reason is not None else None)  # type: ignore[arg-type]
