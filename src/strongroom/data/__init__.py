"""Encryption at rest: chunked streams between file objects, random access, data keys.

:func:`encrypt_stream` / :func:`decrypt_stream` move a whole stream in constant memory;
:class:`EncryptedFile` reads any byte range of an encrypted stream, opening only the chunks
that hold it. Data keys come from a :class:`DataKeyProvider` (:class:`InProcessDataKeys`
over a key service in this process) or from the caller. The format is the chunked stream,
version 1, of :mod:`strongroom.crypto.stream` (spec in docs/formats.md).
"""

from strongroom.data.keys import DATA_KEY_SPEC, DataKey, DataKeyProvider, InProcessDataKeys
from strongroom.data.reader import EncryptedFile
from strongroom.data.streams import KeySource, decrypt_stream, encrypt_stream

__all__ = [
    "DATA_KEY_SPEC",
    "DataKey",
    "DataKeyProvider",
    "EncryptedFile",
    "InProcessDataKeys",
    "KeySource",
    "decrypt_stream",
    "encrypt_stream",
]
