"""Encrypt and decrypt streams between binary file objects (chunked stream format v1).

Constant memory: one plaintext chunk and one ciphertext chunk in flight, whatever the
length. A data key comes either from the caller (with its wrapped form and key id) or from
a :class:`~strongroom.data.keys.DataKeyProvider`. Any invalid, altered, truncated or
extended stream fails as one :class:`~strongroom.errors.InvalidCiphertextError`; errors of
the key service (a wrong context, another tenant's key) pass through as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import overload

from strongroom.crypto.stream import (
    DEFAULT_CHUNK_SIZE,
    InvalidStream,
    NotAStream,
    StreamHeader,
    StreamSealer,
    check_chunk_size,
)
from strongroom.crypto.stream_io import Readable, Unwrap, Writable, decrypt_file, encrypt_file
from strongroom.data.keys import DataKeyProvider
from strongroom.errors import InvalidCiphertextError, ValidationError

KeySource = Unwrap | DataKeyProvider
"""How a reader gets a stream's data key: a callback on the header, or a provider."""

_INVALID = (
    "The encrypted stream does not authenticate: it was altered, truncated or damaged "
    "(nothing of it is trusted)."
)
KMS_BLOB_VERSION = 0x01
"""First byte of a Strongroom KMS ciphertext blob (docs/formats.md), for a hint."""


def not_a_stream_message(exc: NotAStream) -> str:
    """What a user is told when the input is not a Strongroom stream at all."""
    if exc.empty:
        return "The input is empty: it is not a Strongroom encrypted stream."
    version = exc.unknown_version
    if version is not None:
        return (
            f"The input is a Strongroom encrypted stream of a format (version {version}) "
            "this version of Strongroom does not read: decrypt it with a newer one."
        )
    hint = "It was not made by 'strongroom encrypt' (nor stored by 'strongroom objects')."
    lead = exc.leading
    if len(lead) > 1 and lead[0] == KMS_BLOB_VERSION and lead[1] in (1, 2):
        hint = (
            "It looks like a KMS ciphertext blob (from Encrypt or GenerateDataKey): "
            "decrypt those with the KMS Decrypt operation ('aws kms decrypt')."
        )
    return f"The input is not a Strongroom encrypted stream. {hint}"


@contextmanager
def stream_errors() -> Iterator[None]:
    """Turn :class:`~strongroom.crypto.stream.InvalidStream` into the one client error.

    Input that is not a stream at all (empty, another format, a newer version) is told
    apart from a stream that does not authenticate: only public bytes decide that.
    """
    try:
        yield
    except NotAStream as exc:
        raise InvalidCiphertextError(not_a_stream_message(exc)) from exc
    except InvalidStream as exc:
        raise InvalidCiphertextError(_INVALID) from exc


def new_sealer(
    data_key: bytes,
    wrapped_key: bytes,
    key_id: str,
    context: Mapping[str, str] | None,
    chunk_size: int,
) -> StreamSealer:
    """A sealer for a new stream, with the public API's limits (64 KiB-16 MiB chunks)."""
    try:
        check_chunk_size(chunk_size)
        return StreamSealer(
            data_key,
            key_id=key_id,
            wrapped_key=wrapped_key,
            context=context,
            chunk_size=chunk_size,
        )
    except ValueError as exc:
        raise ValidationError(f"Cannot encrypt: {exc}.") from exc


def unwrapper(source: KeySource, context: Mapping[str, str] | None = None) -> Unwrap:
    """Turn a key source into a header callback; with ``context``, require exactly it.

    The header's context is compared before the key service is asked; a header whose
    context was altered to pass this check fails its MAC afterwards.
    """
    expected = None if context is None else dict(context)

    def unwrap(header: StreamHeader) -> bytes:
        if expected is not None and dict(header.context) != expected:
            raise InvalidCiphertextError(_INVALID)
        if isinstance(source, DataKeyProvider):
            return source.decrypt_data_key(
                header.wrapped_key, dict(header.context), key_id=header.key_id
            )
        return source(header)

    return unwrap


@overload
def encrypt_stream(
    src: Readable,
    dst: Writable,
    data_key: bytes,
    wrapped_key: bytes,
    key_id: str,
    context: Mapping[str, str] | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> StreamHeader: ...


@overload
def encrypt_stream(
    src: Readable,
    dst: Writable,
    data_key: DataKeyProvider,
    *,
    key_id: str,
    context: Mapping[str, str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> StreamHeader: ...


def encrypt_stream(
    src: Readable,
    dst: Writable,
    data_key: bytes | DataKeyProvider,
    wrapped_key: bytes | None = None,
    key_id: str | None = None,
    context: Mapping[str, str] | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> StreamHeader:
    """Encrypt everything ``src`` holds into ``dst`` as one stream; return its header.

    Either give the data key with its wrapped form and key id, or give a provider and
    ``key_id=`` (a KMS key id, ARN or alias): a fresh data key is generated under it for
    ``context`` and the returned key ARN goes into the header. ``chunk_size`` is a power of
    two from 64 KiB to 16 MiB.
    """
    if key_id is None:
        raise ValidationError("A key id is required.")
    if isinstance(data_key, DataKeyProvider):
        check_chunk_size_or_fail(chunk_size)
        generated = data_key.generate_data_key(key_id, context)
        sealer = new_sealer(
            generated.plaintext, generated.wrapped, generated.key_arn, context, chunk_size
        )
    else:
        if wrapped_key is None:
            raise ValidationError("A wrapped key is required with a plaintext data key.")
        sealer = new_sealer(data_key, wrapped_key, key_id, context, chunk_size)
    encrypt_file(src, dst, sealer)
    return sealer.header


def check_chunk_size_or_fail(chunk_size: int) -> None:
    """Raise :class:`~strongroom.errors.ValidationError` for a chunk size out of range."""
    try:
        check_chunk_size(chunk_size)
    except ValueError as exc:
        raise ValidationError(f"Cannot encrypt: {exc}.") from exc


def decrypt_stream(
    src: Readable,
    dst: Writable,
    key: KeySource,
    *,
    context: Mapping[str, str] | None = None,
) -> StreamHeader:
    """Verify and decrypt one stream from ``src`` into ``dst``; return its header.

    ``key`` is a callback that turns the header (key id, wrapped key, context) into the
    data key, or a :class:`~strongroom.data.keys.DataKeyProvider`. With ``context``, the
    stream must carry exactly that encryption context. Plaintext reaches ``dst`` chunk by
    chunk, each only after it verified; on failure ``dst`` holds the verified prefix, so
    write to a temporary file and rename it only on success.
    """
    with stream_errors():
        return decrypt_file(src, dst, unwrapper(key, context))
