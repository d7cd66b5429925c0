"""Pure cryptographic formats: no I/O, primitives only from ``cryptography``.

Public recipes: the KMS ciphertext blob (:mod:`.blob`), key wrapping (:mod:`.wrap`) and the
canonical encryption context (:mod:`.context`). Raw primitives live in :mod:`.hazmat`.
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
from strongroom.crypto.wrap import UnwrapFailed, key_identity, unwrap_key, wrap_key

__all__ = [
    "BLOB_VERSION",
    "BlobHeader",
    "BlobKind",
    "InvalidBlob",
    "UnwrapFailed",
    "decode_context",
    "encode_context",
    "key_identity",
    "open_blob",
    "parse_header",
    "seal",
    "unwrap_key",
    "wrap_key",
]
