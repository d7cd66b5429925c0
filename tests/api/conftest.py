"""A tiny echo backend and a real uvicorn server on loopback for the HTTP/auth tests.

The backend stands in for ``strongroom.kms.KeyService`` only to exercise the protocol and
authentication layer: "ciphertexts" are the plaintext behind a prefix.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import uvicorn
from botocore.config import Config
from prometheus_client import CollectorRegistry

from strongroom.api import create_app
from strongroom.errors import (
    InvalidCiphertextError,
    NotFoundError,
    StoreError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms.caller import AccessKey, Caller

ACCOUNT = "111122223333"
ACCESS_KEY_ID = "AKIASTRONGROOMTEST01"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSTRONGROOM"
REGION = "eu-west-1"
CT_PREFIX = b"echo-ct:"
BOOM = "trigger-internal-failure-7f3c"
STORE_BOOM = "trigger-store-failure-7f3c"
BAD_RESPONSE = "trigger-unencodable-response-7f3c"


class EchoBackend:
    """Implements ``KmsBackend`` with a few operations; the faults run only when asked."""

    BOOM = BOOM
    STORE_BOOM = STORE_BOOM
    BAD_RESPONSE = BAD_RESPONSE
    CT_PREFIX = CT_PREFIX

    def __init__(self, faults: bool = True) -> None:
        caller = Caller(tenant=ACCOUNT, principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice")
        self.keys = {ACCESS_KEY_ID: AccessKey(ACCESS_KEY_ID, SECRET, caller)}
        self.faults = faults
        self.calls: list[tuple[Caller, str, dict[str, Any], str]] = []

    def lookup_access_key(self, access_key_id: str) -> AccessKey | None:
        return self.keys.get(access_key_id)

    def call(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        self.calls.append((caller, operation, request, request_id))
        key_id = request.get("KeyId", "")
        if self.faults and key_id == BOOM:
            raise RuntimeError("boom: /var/lib/strongroom/secret-internals")
        if self.faults and key_id == STORE_BOOM:
            raise StoreError("database /var/lib/strongroom/db is corrupt")
        if self.faults and key_id == BAD_RESPONSE:
            return {"KeyId": object()}
        if operation == "GenerateRandom":
            count = request.get("NumberOfBytes", 32)
            if not 1 <= count <= 1024:
                raise ValidationError("NumberOfBytes must be between 1 and 1024.")
            return {"Plaintext": os.urandom(count)}
        if operation == "Encrypt":
            plaintext = request.get("Plaintext")
            if not isinstance(plaintext, bytes):
                raise ValidationError("Plaintext is required.")
            return {
                "KeyId": f"arn:aws:kms:{caller.region}:{caller.tenant}:key/{key_id}",
                "CiphertextBlob": CT_PREFIX + plaintext,
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            }
        if operation == "Decrypt":
            blob = request.get("CiphertextBlob", b"")
            if not blob.startswith(CT_PREFIX):
                raise InvalidCiphertextError("")
            return {"KeyId": "k", "Plaintext": blob[len(CT_PREFIX) :]}
        if operation == "DescribeKey" and key_id == "dated":
            created = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
            return {"KeyMetadata": {"KeyId": "dated", "CreationDate": created, "Enabled": True}}
        if operation == "DescribeKey":
            raise NotFoundError(f"Key '{key_id}' does not exist")
        raise UnsupportedOperationError(f"{operation} is not offered by the echo backend.")


class SkewClock:
    """The server's clock: real time plus an offset a test may set."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Server:
    """A running app: its URL and the parts tests look at or turn."""

    url: str
    port: int
    access_key_id: str
    secret: str
    region: str
    account: str
    backend: EchoBackend
    clock: SkewClock
    registry: CollectorRegistry
    ready: list[bool | None] = field(default_factory=lambda: [True])


def _serve(backend: EchoBackend) -> Iterator[Server]:
    clock = SkewClock()
    registry = CollectorRegistry()
    ready: list[bool | None] = [True]

    def readiness() -> bool:
        if ready[0] is None:
            raise RuntimeError("readiness probe broke")
        return ready[0]

    app = create_app(backend, clock=clock, registry=registry, readiness=readiness)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue here until uvicorn accepts: no start-up wait
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield Server(
            url=f"http://127.0.0.1:{port}",
            port=port,
            access_key_id=ACCESS_KEY_ID,
            secret=SECRET,
            region=REGION,
            account=ACCOUNT,
            backend=backend,
            clock=clock,
            registry=registry,
            ready=ready,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A server whose backend can be told to fail (internal errors, bad responses)."""
    yield from _serve(EchoBackend(faults=True))


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Server]:
    """A server whose backend never fails on purpose: any 500 from it is a bug."""
    yield from _serve(EchoBackend(faults=False))


@pytest.fixture
def clock(server: Server) -> Iterator[SkewClock]:
    """The server's clock, put back to real time after the test."""
    yield server.clock
    server.clock.offset = 0.0


def make_client(
    url: str,
    service: str = "kms",
    key_id: str = ACCESS_KEY_ID,
    secret: str = SECRET,
    region: str = REGION,
    token: str | None = None,
) -> Any:
    """A boto3 client for ``service`` against ``url``, retries off."""
    session = boto3.session.Session(
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=region,
    )
    return session.client(
        service,
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


@pytest.fixture(scope="session")
def client_factory() -> Any:
    """:func:`make_client`, for tests that need other credentials or services."""
    return make_client


@pytest.fixture(scope="module")
def kms(server: Server) -> Any:
    """A boto3 KMS client with the right credentials."""
    return make_client(server.url)
