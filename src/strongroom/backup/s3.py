"""A repository in an S3 bucket (boto3; AWS S3 or any S3-compatible service), Object Lock aware.

Files are written whole (one ``PutObject``; S3 shows an object only once complete) and
never overwritten: content-named files that exist are skipped. With a retention date a
file is written with ``ObjectLockMode`` and ``ObjectLockRetainUntilDate`` (the bucket
must have Object Lock enabled); :meth:`S3Store.extend_retention` only ever lengthens a
retention (``PutObjectRetention``). :meth:`S3Store.delete` reads the retention first and
refuses a retained file (:class:`ObjectLockedError`) rather than relying on the server's
answer; it deletes the current version, so a versioned bucket frees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from strongroom.backup.errors import ObjectLockedError
from strongroom.data.kms_http import aws_errors, strongroom_error
from strongroom.errors import NotFoundError, StrongroomError, ValidationError

_SERVICE = "the S3 service"
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
MODES = ("GOVERNANCE", "COMPLIANCE")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` as (bucket, prefix ending in ``/`` or empty)."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValidationError("An S3 repository is s3://BUCKET or s3://BUCKET/PREFIX.")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class S3Store:
    """Repository files in ``bucket`` under ``prefix``."""

    def __init__(
        self, client: Any, bucket: str, prefix: str = "", mode: str = "GOVERNANCE"
    ) -> None:
        if mode not in MODES:
            raise ValidationError(f"The retention mode is one of {', '.join(MODES)}.")
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._mode = mode

    @classmethod
    def connect(
        cls, url: str, *, endpoint_url: str | None = None, profile: str | None = None,
        region: str | None = None, mode: str = "GOVERNANCE",
    ) -> S3Store:  # fmt: skip
        """A client from the standard AWS chain (path-style with an explicit endpoint)."""
        import boto3
        from botocore.config import Config

        bucket, prefix = parse_s3_url(url)
        with aws_errors(_SERVICE):
            session = boto3.session.Session(profile_name=profile)
            config = Config(
                s3={"addressing_style": "path"} if endpoint_url else {},
                max_pool_connections=16,
                retries={"max_attempts": 5, "mode": "standard"},
            )
            client = session.client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
        return cls(client, bucket, prefix, mode)

    @contextlib.contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                raise NotFoundError(f"Repository file {name!r} does not exist.") from None
            if code == "NoSuchBucket":
                raise NotFoundError(f"The bucket {self._bucket!r} does not exist.") from None
            raise strongroom_error(exc, _SERVICE) from exc
        except BotoCoreError as exc:
            raise strongroom_error(exc, _SERVICE) from exc

    def put(self, name: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        """``PutObject`` unless the object exists (with Object Lock when ``retain_until``)."""
        if self.exists(name):
            if retain_until is not None:
                self.extend_retention(name, retain_until)
            return
        extra: dict[str, Any] = {}
        if retain_until is not None:
            extra = {"ObjectLockMode": self._mode, "ObjectLockRetainUntilDate": retain_until}
        with self._errors(name):
            self._client.put_object(
                Bucket=self._bucket, Key=self._prefix + name, Body=data, **extra
            )

    def get(self, name: str) -> bytes:
        """One ``GetObject``."""
        with self._errors(name):
            reply = self._client.get_object(Bucket=self._bucket, Key=self._prefix + name)
            return bytes(reply["Body"].read())

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """One ranged ``GetObject``."""
        if length <= 0:
            return b""
        with self._errors(name):
            reply = self._client.get_object(
                Bucket=self._bucket, Key=self._prefix + name,
                Range=f"bytes={offset}-{offset + length - 1}",
            )  # fmt: skip
            return bytes(reply["Body"].read())

    def _head(self, name: str) -> dict[str, Any]:
        with self._errors(name):
            return dict(self._client.head_object(Bucket=self._bucket, Key=self._prefix + name))

    def exists(self, name: str) -> bool:
        """``HeadObject`` answers."""
        try:
            self._head(name)
        except NotFoundError:
            return False
        return True

    def size(self, name: str) -> int:
        """``ContentLength`` of ``HeadObject``."""
        return int(self._head(name)["ContentLength"])

    def retained_until(self, name: str) -> datetime | None:
        """The object's retain-until date if it is still in the future."""
        until = self._head(name).get("ObjectLockRetainUntilDate")
        if until is None:
            return None
        if isinstance(until, str):
            until = datetime.fromisoformat(until.replace("Z", "+00:00"))
        return until if until > datetime.now(UTC) else None

    def extend_retention(self, name: str, until: datetime) -> None:
        """``PutObjectRetention`` when ``until`` is later than the current retention."""
        current = self.retained_until(name)
        if current is not None and current >= until:
            return
        with self._errors(name):
            self._client.put_object_retention(
                Bucket=self._bucket, Key=self._prefix + name,
                Retention={"Mode": self._mode, "RetainUntilDate": until},
            )  # fmt: skip

    def delete(self, name: str) -> None:
        """Delete the current version, unless it is retained (then ``ObjectLockedError``)."""
        head = self._head(name)
        until = self.retained_until(name)
        if until is not None or head.get("ObjectLegalHoldStatus") == "ON":
            raise ObjectLockedError(f"{name} is retained by S3 Object Lock until {until}.")
        extra = {"VersionId": head["VersionId"]} if head.get("VersionId") else {}
        try:
            with self._errors(name):
                self._client.delete_object(Bucket=self._bucket, Key=self._prefix + name, **extra)
        except StrongroomError as exc:
            if "AccessDenied" in type(exc).__name__ or "locked" in str(exc).lower():
                raise ObjectLockedError(f"{name} is retained by S3 Object Lock.") from exc
            raise

    def list(self, prefix: str) -> Iterator[str]:
        """``ListObjectsV2`` pages."""
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[str] = []
        with self._errors(prefix):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + prefix):
                found.extend(str(o["Key"])[len(self._prefix) :] for o in page.get("Contents", ()))
        return iter(sorted(found))

    def describe(self) -> str:
        """``s3://BUCKET/PREFIX``."""
        return f"s3://{self._bucket}/{self._prefix}"
