"""The encrypted object store: one contract over every backend (dir, S3, memory); S3 specifics.

S3 is a real endpoint on loopback: moto's server over HTTP, one per module.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from strongroom.crypto.stream import parse_header
from strongroom.data import InProcessDataKeys
from strongroom.data.object_names import OBJECT_KEY, TENANT_KEY, check_name
from strongroom.data.objects import ObjectBackend, ObjectStore, chunk_size_for, remaining_length
from strongroom.data.objects_local import LocalBackend
from strongroom.data.objects_memory import MemoryBackend
from strongroom.data.objects_s3 import SPOOL_BYTES, S3Backend
from strongroom.errors import (
    InvalidCiphertextError,
    NotFoundError,
    ProtocolError,
    StrongroomError,
    ValidationError,
)
from strongroom.kms import Caller
from strongroom.testing.s3 import run_moto_server

C = 1 << 16
BODY = bytes(range(256)) * (3 * C // 256) + b"tail"  # three full chunks and a short one
_BUCKETS = itertools.count(1)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(params=["dir", "s3", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectBackend]:
    if request.param == "dir":
        yield LocalBackend(tmp_path / "objects")
    elif request.param == "memory":
        yield MemoryBackend()
    else:
        client = s3_client(request.getfixturevalue("s3_endpoint"))
        bucket = f"objects-{next(_BUCKETS)}"
        client.create_bucket(Bucket=bucket)
        yield S3Backend(client, bucket, prefix="store/")
        client.close()


@pytest.fixture
def store(
    backend: ObjectBackend, alice_keys: InProcessDataKeys, alice: Caller, alice_key: str
) -> ObjectStore:
    return ObjectStore(backend, alice_keys, tenant=alice.tenant, key_id=alice_key, chunk_size=C)


def copy_raw(backend: ObjectBackend, src: str, dst: str) -> None:
    """Copy stored (encrypted) bytes under another key, as someone with storage access."""
    data = backend.read(src)
    with backend.create(dst) as sink:
        sink.write(memoryview(data))


@pytest.mark.parametrize("size", [0, 1, C - 1, C, len(BODY)])
def test_put_get_round_trip_bytes_and_files(store: ObjectStore, size: int) -> None:
    data = BODY[:size]
    store.put("bytes", data)
    store.put("file", io.BytesIO(data))
    assert store.get("bytes") == data
    assert store.get("file") == data
    with store.open("file") as reader:
        assert reader.size == size
        assert reader.read() == data


def test_get_range_reads_the_right_bytes(store: ObjectStore) -> None:
    store.put("doc", BODY)
    for start, end in [(0, 0), (0, 10), (C - 3, C + 3), (2 * C, 3 * C), (len(BODY) - 2, 10**9)]:
        assert store.get_range("doc", start, end) == BODY[start:end]
    assert store.get_range("doc", len(BODY) + 5, len(BODY) + 9) == b""
    with pytest.raises(ValidationError):
        store.get_range("doc", 5, 4)


def test_header_binds_tenant_and_name_and_keeps_the_callers_context(
    store: ObjectStore, backend: ObjectBackend, alice: Caller, alice_key: str
) -> None:
    header = store.put("reports/q1.pdf", b"pdf", {"department": "finance"})
    context = dict(header.context)
    version = context.pop("strongroom:version")  # random per put, in the object index
    assert len(version) == 32 and int(version, 16) >= 0
    assert context == {
        "department": "finance",
        TENANT_KEY: alice.tenant,
        OBJECT_KEY: "reports/q1.pdf",
    }
    assert header.key_id == alice_key
    stored = backend.read(f"{alice.tenant}/reports/q1.pdf")
    assert parse_header(stored) == header and b"pdf" not in stored[header.size :]
    assert store.get("reports/q1.pdf", context={"department": "finance"}) == b"pdf"
    for wrong in ({}, {"department": "sales"}, {"department": "finance", "x": "y"}):
        with pytest.raises(InvalidCiphertextError):
            store.get("reports/q1.pdf", context=wrong)
        with pytest.raises(InvalidCiphertextError):
            store.get_range("reports/q1.pdf", 0, 1, context=wrong)


def test_swapped_bodies_fail(store: ObjectStore, backend: ObjectBackend, alice: Caller) -> None:
    store.put("a", b"object a")
    store.put("b", b"object b")
    copy_raw(backend, f"{alice.tenant}/a", f"{alice.tenant}/swap")
    copy_raw(backend, f"{alice.tenant}/b", f"{alice.tenant}/a")
    for name in ("a", "swap"):
        with pytest.raises(InvalidCiphertextError):
            store.get(name)
        with pytest.raises(InvalidCiphertextError):
            store.open(name)
    assert store.get("b") == b"object b"


def test_object_moved_to_another_tenants_space_fails(
    store: ObjectStore, backend: ObjectBackend, alice_keys: InProcessDataKeys, alice: Caller
) -> None:
    store.put("a", b"object a")
    copy_raw(backend, f"{alice.tenant}/a", "elsewhere/a")
    other = ObjectStore(backend, alice_keys, tenant="elsewhere")
    with pytest.raises(InvalidCiphertextError):
        other.get("a")


def test_another_tenant_cannot_read(
    store: ObjectStore, backend: ObjectBackend, bob_keys: InProcessDataKeys, alice: Caller
) -> None:
    store.put("a", b"alice's")
    as_bob = ObjectStore(backend, bob_keys, tenant=alice.tenant)
    with pytest.raises(StrongroomError) as caught:
        as_bob.get("a")
    assert "alice's" not in str(caught.value)


def test_tampered_objects_fail_whole_and_by_range(
    store: ObjectStore, backend: ObjectBackend, alice: Caller
) -> None:
    store.put("doc", BODY)
    key = f"{alice.tenant}/doc"
    good = backend.read(key)
    header = parse_header(good)
    for offset in (5, header.size - 1, header.size + 10, header.size + C + 16 + 3, len(good) - 1):
        bad = bytearray(good)
        bad[offset] ^= 0x01
        with backend.create(key) as sink:
            sink.write(memoryview(bytes(bad)))
        with pytest.raises(InvalidCiphertextError):
            store.get("doc")
        chunk = max(offset - header.size, 0) // (C + 16)
        with pytest.raises(InvalidCiphertextError):
            store.get_range("doc", chunk * C, chunk * C + 1)
    with backend.create(key) as sink:
        sink.write(memoryview(good[:-1]))
    with pytest.raises(InvalidCiphertextError):
        store.get("doc")
    with pytest.raises(InvalidCiphertextError):
        store.get_range("doc", len(BODY) - 5, len(BODY))


def test_list_is_sorted_by_prefix_and_per_tenant(
    store: ObjectStore, backend: ObjectBackend, alice_keys: InProcessDataKeys, alice_key: str
) -> None:
    names = ["b", "a/x", "a/y/z", "a", "ab", "é", "reports/2024/q1"]
    for name in names:
        store.put(name, name.encode())
    other = ObjectStore(backend, alice_keys, tenant="other-space", key_id=alice_key)
    other.put("a/secret", b"1")
    assert store.list() == sorted(names)
    assert store.list("a") == ["a", "a/x", "a/y/z", "ab"]
    assert store.list("a/") == ["a/x", "a/y/z"]
    assert store.list("reports/20") == ["reports/2024/q1"]
    assert store.list("zzz") == []
    assert other.list() == ["a/secret"]
    for name in names:
        assert store.get(name) == name.encode()


def test_delete(store: ObjectStore) -> None:
    store.put("a/b", b"1")
    store.put("a", b"2")
    store.delete("a/b")
    assert store.list() == ["a"]
    for call in (store.get, store.open, store.delete):
        with pytest.raises(NotFoundError):
            call("a/b")
    assert store.get("a") == b"2"


def test_put_replaces_and_a_failed_put_keeps_the_old_object(store: ObjectStore) -> None:
    store.put("doc", b"version 1")
    store.put("doc", b"version 2")

    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent > 2 * C:
                raise OSError("disk gone")
            view = memoryview(buffer)
            view[:] = b"x" * len(view)
            self.sent += len(view)
            return len(view)

    with pytest.raises(OSError, match="disk gone"):
        store.put("doc", Broken())
    with pytest.raises(OSError, match="disk gone"):
        store.put("new", Broken())
    assert store.get("doc") == b"version 2"
    assert store.list() == ["doc"]


@pytest.mark.parametrize(
    "name", ["", "/a", "a/", "a//b", "a\x00b", "x" * 251, "/".join(["x" * 200] * 6)]
)
def test_bad_names_are_refused(alice_keys: InProcessDataKeys, alice: Caller, name: str) -> None:
    store = ObjectStore(MemoryBackend(), alice_keys, tenant=alice.tenant, key_id="alias/any")
    with pytest.raises(ValidationError):
        store.put(name, b"x")
    with pytest.raises(ValidationError):
        store.get(name)


def test_reserved_context_keys_and_missing_key_id(
    alice_keys: InProcessDataKeys, alice: Caller
) -> None:
    backend = MemoryBackend()
    store = ObjectStore(backend, alice_keys, tenant=alice.tenant)
    with pytest.raises(ValidationError):
        store.put("a", b"x")  # no key id
    with pytest.raises(ValidationError):
        store.put("a", b"x", {OBJECT_KEY: "b"}, key_id="alias/any")
    with pytest.raises(ValidationError):
        ObjectStore(backend, alice_keys, tenant="../etc")
    with pytest.raises(ValidationError):
        ObjectStore(backend, alice_keys, tenant="t", chunk_size=1000)


def test_names_and_sizes_helpers() -> None:
    assert check_name("a/b c/é") == "a/b c/é"
    assert chunk_size_for(None, 1 << 20) == 1 << 20
    assert chunk_size_for(10, 1 << 20) == 1 << 16
    assert chunk_size_for(200_000, 1 << 20) == 1 << 18
    assert chunk_size_for(5 << 20, 1 << 20) == 1 << 20
    buffer = io.BytesIO(b"0123456789")
    buffer.seek(4)
    assert remaining_length(buffer) == 6 and buffer.tell() == 4
    assert remaining_length(object()) is None


def test_small_objects_get_small_chunks(
    backend: ObjectBackend, alice_keys: InProcessDataKeys, alice: Caller, alice_key: str
) -> None:
    store = ObjectStore(backend, alice_keys, tenant=alice.tenant, key_id=alice_key)
    assert store.put("small", b"x" * 100).chunk_size == 1 << 16
    assert store.put("file", io.BytesIO(b"x" * 100)).chunk_size == 1 << 16
    assert store.get("small") == b"x" * 100


@pytest.fixture
def s3_backend(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Backend]:
    """A bucket of its own, through S3Backend.connect and the AWS environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    made = S3Backend.connect(f"bucket-{next(_BUCKETS)}", endpoint_url=s3_endpoint)
    made._client.create_bucket(Bucket=made._bucket)
    yield made
    made._client.close()


@pytest.fixture
def s3_store(
    s3_backend: S3Backend, alice_keys: InProcessDataKeys, alice: Caller, alice_key: str
) -> ObjectStore:
    return ObjectStore(s3_backend, alice_keys, tenant=alice.tenant, key_id=alice_key, chunk_size=C)


# -- S3 only -------------------------------------------------------------------------------


class GetLog:
    """Records the Range header of every GetObject the client sends."""

    def __init__(self, client: Any) -> None:
        self.ranges: list[str | None] = []
        client.meta.events.register("before-send.s3.GetObject", self._seen)

    def _seen(self, request: Any, **_: Any) -> None:
        if "/_index/" in request.url:
            return  # the object's index entry: one small whole GET
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


def test_s3_get_range_fetches_only_the_chunks_it_needs(s3_store: ObjectStore) -> None:
    store, backend = s3_store, s3_store._backend
    body = bytes(i % 251 for i in range(32 * C))  # 32 chunks, 2 MiB
    store.put("big", body)
    log = GetLog(cast(S3Backend, backend)._client)
    start = 17 * C + 100
    assert store.get_range("big", start, start + 10) == body[start : start + 10]
    # the header (one 64 KiB read-ahead) and chunk 17, nothing like the whole object
    assert 0 < log.bytes_asked() <= 3 * (C + 16)
    log.ranges.clear()
    assert store.get_range("big", len(body) - 5, len(body)) == body[-5:]
    assert log.bytes_asked() <= 3 * (C + 16)


def test_s3_large_objects_go_up_in_parts(
    s3_backend: S3Backend, alice_keys: InProcessDataKeys, alice: Caller, alice_key: str
) -> None:
    backend = s3_backend
    store = ObjectStore(backend, alice_keys, tenant=alice.tenant, key_id=alice_key)
    body = b"\x5a" * (SPOOL_BYTES + 3 * C)
    store.put("large", io.BytesIO(body))  # through a file object: the multipart path
    assert store.get("large") == body
    assert store.get_range("large", SPOOL_BYTES, SPOOL_BYTES + 4) == body[:4]


def test_s3_object_replaced_while_open_is_not_mixed(s3_store: ObjectStore) -> None:
    store = s3_store
    store.put("doc", b"A" * (3 * C))
    with store.open("doc") as reader:
        assert reader.read(10) == b"A" * 10
        store.put("doc", b"B" * (3 * C))
        reader.seek(2 * C)
        with pytest.raises(ProtocolError) as caught:
            reader.read(10)
    assert caught.value.aws_type == "PreconditionFailed"
    assert store.get("doc") == b"B" * (3 * C)


def test_s3_missing_bucket_and_object(s3_store: ObjectStore, s3_backend: S3Backend) -> None:
    store, backend = s3_store, s3_backend
    with pytest.raises(NotFoundError):
        store.get("nothing")
    with pytest.raises(NotFoundError):
        store.delete("nothing")
    gone = S3Backend(backend._client, "no-such-bucket")
    with pytest.raises(NotFoundError):
        gone.read("x")
    with pytest.raises(StrongroomError):
        list(gone.keys(""))
