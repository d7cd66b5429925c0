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
