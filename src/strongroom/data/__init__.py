"""Encryption at rest: chunked streams between file objects, random access, data keys.

:func:`encrypt_stream` / :func:`decrypt_stream` move a whole stream in constant memory;
:class:`EncryptedFile` reads any byte range of an encrypted stream, opening only the chunks
that hold it. Data keys come from a :class:`DataKeyProvider` (:class:`InProcessDataKeys`
over a key service in this process, :class:`KmsHttpDataKeys` over the AWS KMS API,
:class:`UserDataKeys` per end user in process, :class:`HttpUserDataKeys` per end user over
HTTP (:class:`HttpUserKeys`), :class:`CachingDataKeys` in front of any of them) or
from the caller. :class:`ObjectStore` keeps encrypted objects per tenant in a directory,
S3 or memory. The format is the chunked stream, version 1, of
:mod:`strongroom.crypto.stream` (spec in docs/formats.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strongroom.data.cache import CacheLimits, CachingDataKeys
    from strongroom.data.keys import DATA_KEY_SPEC, DataKey, DataKeyProvider, InProcessDataKeys
    from strongroom.data.kms_http import KmsHttpDataKeys
    from strongroom.data.objects import ObjectBackend, ObjectStore
    from strongroom.data.objects_local import LocalBackend
    from strongroom.data.objects_memory import MemoryBackend
    from strongroom.data.objects_s3 import S3Backend
    from strongroom.data.reader import EncryptedFile
    from strongroom.data.streams import KeySource, decrypt_stream, encrypt_stream
    from strongroom.data.user_keys_http import HttpUserDataKeys, HttpUserKeys
    from strongroom.data.users import UserDataKeys

_HOMES = {
    "CacheLimits": "strongroom.data.cache",
    "CachingDataKeys": "strongroom.data.cache",
    "DATA_KEY_SPEC": "strongroom.data.keys",
    "DataKey": "strongroom.data.keys",
    "DataKeyProvider": "strongroom.data.keys",
    "InProcessDataKeys": "strongroom.data.keys",
    "KmsHttpDataKeys": "strongroom.data.kms_http",
    "ObjectBackend": "strongroom.data.objects",
    "ObjectStore": "strongroom.data.objects",
    "LocalBackend": "strongroom.data.objects_local",
    "MemoryBackend": "strongroom.data.objects_memory",
    "S3Backend": "strongroom.data.objects_s3",
    "EncryptedFile": "strongroom.data.reader",
    "KeySource": "strongroom.data.streams",
    "decrypt_stream": "strongroom.data.streams",
    "encrypt_stream": "strongroom.data.streams",
    "HttpUserDataKeys": "strongroom.data.user_keys_http",
    "HttpUserKeys": "strongroom.data.user_keys_http",
    "UserDataKeys": "strongroom.data.users",
}
"""Where each public name lives: imported on first use (``strongroom encrypt`` loads only
what it needs, not boto3's S3 backend or the object store)."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'strongroom.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "DATA_KEY_SPEC",
    "CacheLimits",
    "CachingDataKeys",
    "DataKey",
    "DataKeyProvider",
    "EncryptedFile",
    "HttpUserDataKeys",
    "HttpUserKeys",
    "InProcessDataKeys",
    "KeySource",
    "KmsHttpDataKeys",
    "LocalBackend",
    "MemoryBackend",
    "ObjectBackend",
    "ObjectStore",
    "S3Backend",
    "UserDataKeys",
    "decrypt_stream",
    "encrypt_stream",
]
