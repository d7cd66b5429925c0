"""The S3 backend against a real S3 endpoint on loopback (moto's server over HTTP)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.data import InProcessDataKeys
from strongroom.data.objects import ObjectStore
from strongroom.data.objects_s3 import SPOOL_BYTES, S3Backend
from strongroom.errors import NotFoundError, ProtocolError, StrongroomError
from strongroom.kms import Caller
from strongroom.testing.s3 import run_moto_server

C = 1 << 16
_BUCKETS = itertools.count(1)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with run_moto_server() as url:
        yield url


@pytest.fixture
def backend(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Backend]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    made = S3Backend.connect(f"bucket-{next(_BUCKETS)}", endpoint_url=endpoint)
    made._client.create_bucket(Bucket=made._bucket)
    yield made
    made._client.close()


@pytest.fixture
def store(backend: S3Backend, alice_keys: InProcessDataKeys, alice: Caller, alice_key: str):
    return ObjectStore(backend, alice_keys, tenant=alice.tenant, key_id=alice_key, chunk_size=C)


class GetLog:
    """Records the Range header of every GetObject the client sends."""

    def __init__(self, client: Any) -> None:
        self.ranges: list[str | None] = []
        client.meta.events.register("before-send.s3.GetObject", self._seen)

    def _seen(self, request: Any, **_: Any) -> None:
        value = request.headers.get("Range")
        self.ranges.append(value.decode() if isinstance(value, bytes) else value)

    def bytes_asked(self) -> int:
        total = 0
        for value in self.ranges:
            assert value is not None, "a GET without a range"
            match = re.fullmatch(r"bytes=(\d+)-(\d+)", value)
            assert match
            total += int(match[2]) - int(match[1]) + 1
        return total


def test_get_range_fetches_only_the_chunks_it_needs(store: ObjectStore, backend: S3Backend) -> None:
    body = bytes(i % 251 for i in range(32 * C))  # 32 chunks, 2 MiB
    store.put("big", body)
    log = GetLog(backend._client)
    start = 17 * C + 100
    assert store.get_range("big", start, start + 10) == body[start : start + 10]
    # the header (one 64 KiB read-ahead) and chunk 17, nothing like the whole object
    assert 0 < log.bytes_asked() <= 3 * (C + 16)
    log.ranges.clear()
    assert store.get_range("big", len(body) - 5, len(body)) == body[-5:]
    assert log.bytes_asked() <= 3 * (C + 16)


def test_large_objects_go_up_in_parts(backend: S3Backend, alice_keys, alice, alice_key) -> None:
    store = ObjectStore(backend, alice_keys, tenant=alice.tenant, key_id=alice_key)
    body = b"\x5a" * (SPOOL_BYTES + 3 * C)
    import io

    store.put("large", io.BytesIO(body))  # through a file object: the multipart path
    assert store.get("large") == body
    assert store.get_range("large", SPOOL_BYTES, SPOOL_BYTES + 4) == body[:4]


def test_an_object_replaced_while_open_is_not_mixed(store: ObjectStore) -> None:
    store.put("doc", b"A" * (3 * C))
    with store.open("doc") as reader:
        assert reader.read(10) == b"A" * 10
        store.put("doc", b"B" * (3 * C))
        reader.seek(2 * C)
        with pytest.raises(ProtocolError) as caught:
            reader.read(10)
    assert caught.value.aws_type == "PreconditionFailed"
    assert store.get("doc") == b"B" * (3 * C)


def test_missing_bucket_and_object(endpoint: str, store: ObjectStore, backend: S3Backend) -> None:
    with pytest.raises(NotFoundError):
        store.get("nothing")
    with pytest.raises(NotFoundError):
        store.delete("nothing")
    gone = S3Backend(backend._client, "no-such-bucket")
    with pytest.raises(NotFoundError):
        gone.read("x")
    with pytest.raises(StrongroomError):
        list(gone.keys(""))
