"""Pure cryptographic formats: no I/O, primitives only from ``cryptography``.

Public recipes: the KMS ciphertext blob (:mod:`.blob`), key wrapping (:mod:`.wrap`), the
canonical encryption context (:mod:`.context`) and the chunked stream (:mod:`.stream`,
:mod:`.stream_io`). Raw primitives live in :mod:`.hazmat`.
"""

from strongroom.crypto.blob import (
    BLOB_VERSION,
    BlobHeader,
    BlobKind,
    InvalidBlob,
    open_blob,
    parse_header,
    seal,
)
from strongroom.crypto.context import decode_context, encode_context
from strongroom.crypto.stream import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    STREAM_VERSION,
    InvalidStream,
    StreamHeader,
    StreamOpener,
    StreamSealer,
)
from strongroom.crypto.stream_io import (
    StreamLayout,
    decrypt_buffer,
    decrypt_file,
    encrypt_buffer,
    encrypt_file,
)
from strongroom.crypto.wrap import UnwrapFailed, key_identity, unwrap_key, wrap_key

__all__ = [
    "BLOB_VERSION",
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "STREAM_VERSION",
    "BlobHeader",
    "BlobKind",
    "InvalidBlob",
    "InvalidStream",
    "StreamHeader",
    "StreamLayout",
    "StreamOpener",
    "StreamSealer",
    "UnwrapFailed",
    "decode_context",
    "decrypt_buffer",
    "decrypt_file",
    "encode_context",
    "encrypt_buffer",
    "encrypt_file",
    "key_identity",
    "open_blob",
    "parse_header",
    "seal",
    "unwrap_key",
    "wrap_key",
]
