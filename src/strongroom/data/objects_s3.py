"""Object backend on any S3-compatible service (AWS S3, MinIO, Ceph RGW...) through boto3.

Objects are written whole (``PutObject``, or a multipart upload past 8 MiB, which S3 also
shows only once complete) from a spooled temporary file, so a failed write leaves the old
object. Reading a range asks for just those bytes (ranged ``GetObject`` pinned to the
ETag seen when the object was opened, so a concurrent overwrite cannot mix two versions).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from strongroom.data.kms_http import aws_errors, strongroom_error
from strongroom.errors import NotFoundError, StrongroomError

SPOOL_BYTES = 8 << 20
"""Objects up to this size are spooled in memory and sent in one ``PutObject``."""
READ_BUFFER_BYTES = 1 << 16
"""Read-ahead of an open object: the header comes in one request."""
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_SERVICE = "the object store"


def _translate(exc: Exception, key: str) -> StrongroomError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            return NotFoundError(f"Object {key!r} does not exist.")
        if code == "NoSuchBucket":
            return NotFoundError("The bucket does not exist.")
    return strongroom_error(exc, _SERVICE)


@contextlib.contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc, key) from exc


class S3RangeFile(io.RawIOBase):
    """A read-only, seekable file over one S3 object: each read is one ranged GET."""

    def __init__(self, client: Any, bucket: str, key: str, size: int, etag: str) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._size = size
        self._etag = etag
        self._pos = 0

    def readable(self) -> bool:
        """Always true."""
        return True

    def seekable(self) -> bool:
        """Always true."""
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        """Move to ``offset`` (``whence`` as in :meth:`io.IOBase.seek`)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        """The current position."""
        return self._pos

    def readinto(self, buffer: Any, /) -> int:
        """One ranged GET for as much of ``buffer`` as the object still holds."""
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        with _s3_errors(self._key):
            response = self._client.get_object(
                Bucket=self._bucket,
                Key=self._key,
                Range=f"bytes={self._pos}-{self._pos + want - 1}",
                IfMatch=self._etag,
            )
            data = response["Body"].read()
        got = min(len(data), want)
        view[:got] = data[:got]
        self._pos += got
        return got


class S3Backend:
    """Objects in ``bucket`` under ``prefix`` (``""`` or ending in ``/``) via a boto3 client."""

    def __init__(self, client: Any, bucket: str, *, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    @classmethod
    def connect(
        cls,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        ca_bundle: str | None = None,
    ) -> S3Backend:
        """A client from the standard AWS chain (``AWS_ENDPOINT_URL_S3`` included).

        With an explicit ``endpoint_url`` (MinIO, a test server) requests use path-style
        addressing.
        """
        import boto3
        from botocore.config import Config

        with aws_errors(_SERVICE):
            session = boto3.session.Session(profile_name=profile)
            config = Config(s3={"addressing_style": "path"}) if endpoint_url else None
            options: dict[str, Any] = {"region_name": region, "config": config}
            if ca_bundle is not None:
                options["verify"] = ca_bundle
            client = session.client("s3", endpoint_url=endpoint_url, **options)
        return cls(client, bucket, prefix=prefix)

    @contextlib.contextmanager
    def create(self, key: str) -> Iterator[IO[bytes]]:
        """A spooled temporary file, uploaded when the block ends cleanly."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            yield spool
            size = spool.tell()
            spool.seek(0)
            with _s3_errors(key):
                if size <= SPOOL_BYTES:
                    self._client.put_object(
                        Bucket=self._bucket, Key=self._prefix + key, Body=spool.read()
                    )
                else:
                    self._client.upload_fileobj(spool, self._bucket, self._prefix + key)

    def open(self, key: str) -> io.BufferedReader:
        """The object as a buffered, seekable file reading through ranged GETs."""
        with _s3_errors(key):
            head = self._client.head_object(Bucket=self._bucket, Key=self._prefix + key)
        raw = S3RangeFile(
            self._client,
            self._bucket,
            self._prefix + key,
            int(head["ContentLength"]),
            str(head["ETag"]),
        )
        return io.BufferedReader(raw, buffer_size=READ_BUFFER_BYTES)

    def read(self, key: str) -> bytes:
        """The whole object in one GET."""
        with _s3_errors(key):
            body = self._client.get_object(Bucket=self._bucket, Key=self._prefix + key)["Body"]
            return bytes(body.read())

    def delete(self, key: str) -> None:
        """Delete the object (S3 does not say whether it existed: HEAD first)."""
        with _s3_errors(key):
            self._client.head_object(Bucket=self._bucket, Key=self._prefix + key)
            self._client.delete_object(Bucket=self._bucket, Key=self._prefix + key)

    def keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix``, in S3's (UTF-8 byte) order."""
        paginator = self._client.get_paginator("list_objects_v2")
        with _s3_errors(prefix):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + prefix):
                for item in page.get("Contents", ()):
                    yield str(item["Key"])[len(self._prefix) :]

    def __repr__(self) -> str:
        return f"S3Backend(bucket={self._bucket!r}, prefix={self._prefix!r})"
