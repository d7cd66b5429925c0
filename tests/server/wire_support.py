"""Requests on the wire for the tests that talk raw HTTP/1.1 to a ``strongroom server``.

tests/server/test_inline_path.py and test_inline_head_reading.py both send signed requests
as bytes over plain sockets to a server started with ``--insecure-http``.
"""

from __future__ import annotations

import base64
import socket

import boto3

from strongroom.testing.server import ServerInfo
from strongroom.testing.server_clients import signed_kms_request


def sealed_blob(server: ServerInfo, plaintext: bytes) -> str:
    """``plaintext`` encrypted under a new key of the server's admin, base64 as on the wire."""
    creds = server.credentials
    kms = boto3.client(
        "kms",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        region_name=creds["Region"],
    )
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    sealed = kms.encrypt(KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
    return base64.b64encode(sealed).decode("ascii")


def wire_request(server: ServerInfo, operation: str, body: dict[str, object]) -> bytes:
    """One signed JSON 1.1 request, as bytes on the wire (keep-alive)."""
    headers, data = signed_kms_request(server, operation, body)
    lines = ["POST / HTTP/1.1", f"Host: {server.endpoint_url.removeprefix('http://')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(data)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + data


def connect(server: ServerInfo) -> socket.socket:
    """A TCP connection to the server's plain HTTP listener."""
    host, port = server.endpoint_url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)
