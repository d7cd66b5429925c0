"""TLS over memory BIOs (as uvloop runs it) through :class:`DirectSSLObject`."""

from __future__ import annotations

import contextlib
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from strongroom.rootkey import LocalRootOfTrust
from strongroom.server.direct_ssl import DirectSSLObject, direct
from strongroom.store import SqliteStore
from strongroom.tls import SubjectNames, server_credentials, server_ssl_context


def _pump(source: ssl.MemoryBIO, sink: ssl.MemoryBIO) -> None:
    data = source.read()
    if data:
        sink.write(data)


def test_a_direct_tls_object_handshakes_and_carries_data_both_ways(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    root = LocalRootOfTrust.create(tmp_path / "master.key")
    creds = store.write(lambda tx: server_credentials(tx, root, SubjectNames.build(), time.time()))
    store.close()
    (tmp_path / "ca.pem").write_bytes(creds.ca_pem)
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = direct(server_ssl_context(creds)).wrap_bio(server_in, server_out, server_side=True)
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem")).wrap_bio(
        client_in, client_out, server_hostname="localhost"
    )
    assert isinstance(server, DirectSSLObject)
    assert type(server.read).__name__ == "builtin_function_or_method"
    for _ in range(10):  # handshake: each side's output is the other's input
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        _pump(client_out, server_in)
        _pump(server_out, client_in)
    assert server.version() == client.version() in ("TLSv1.2", "TLSv1.3")
    client.write(b"POST / HTTP/1.1\r\n\r\n")
    _pump(client_out, server_in)
    assert server.pending() == 0
    buffer = bytearray(64)
    read: Any = server.read(64, buffer)  # with a buffer: the count (typeshed says bytes)
    assert read == 19 and bytes(buffer[:19]) == b"POST / HTTP/1.1\r\n\r\n"
    with pytest.raises(ssl.SSLWantReadError):
        server.read(64)  # nothing more: the error uvloop's read loop stops on
    assert server.write(b"HTTP/1.1 200 OK\r\n\r\n") == 19
    _pump(server_out, client_in)
    assert client.read(64) == b"HTTP/1.1 200 OK\r\n\r\n"
