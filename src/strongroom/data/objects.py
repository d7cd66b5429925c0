"""An encrypted object store per tenant: put, get, get a byte range, delete, list.

Each object is one chunked stream (format v1) under a data key from a
:class:`~strongroom.data.keys.DataKeyProvider`; the backend only ever sees ciphertext::

    store = ObjectStore(LocalBackend("/srv/objects"), keys, tenant="111122223333",
                        key_id="alias/objects")
    store.put("reports/2024/q1.pdf", data, context={"department": "finance"})
    store.get_range("reports/2024/q1.pdf", 1 << 20, 2 << 20)   # opens one or two chunks

Contexts. The key service sees the caller's context plus ``strongroom:tenant``; the
stream header carries that plus ``strongroom:object`` (the object's name), authenticated
by the header MAC under the object's data key. So an object's body copied under another
name, or into another tenant's space, fails to open (:class:`InvalidCiphertextError`),
while one data key may still serve many objects through
:class:`~strongroom.data.cache.CachingDataKeys`. The header also carries
``strongroom:version``, checked against the tenant's authenticated object index
(:mod:`.object_index`): an older copy of an object put back in its place is refused
(:class:`~strongroom.errors.ObjectRolledBackError`).

Names, tenants and the reserved context entries are :mod:`.object_names`'s. Backends
(:class:`ObjectBackend`) store bytes under ``"<tenant>/<name>"``: a local directory
(:mod:`.objects_local`), any S3-compatible service (:mod:`.objects_s3`) or memory
(:mod:`.objects_memory`, for tests).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from typing import Protocol, TypeVar, cast

from strongroom.crypto.stream import DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, StreamHeader
from strongroom.crypto.stream_io import (
    Readable,
    SeekableReadable,
    Unwrap,
    Writable,
    decrypt_buffer,
    encrypt_buffer,
    encrypt_file,
    write_all,
)
from strongroom.data.cache import data_key_for
from strongroom.data.keys import DataKeyProvider
from strongroom.data.object_index import Entry, IndexFile, check_version
from strongroom.data.object_names import (
    OBJECT_KEY,
    TENANT_KEY,
    VERSION_KEY,
    caller_context_of,
    check_name,
    check_tenant,
    check_user_context,
    kms_context_of,
)
from strongroom.data.reader import EncryptedFile
from strongroom.data.streams import check_chunk_size_or_fail, new_sealer, stream_errors
from strongroom.errors import InvalidCiphertextError, ObjectRolledBackError, ValidationError

T = TypeVar("T")

_INVALID = "The encrypted object is not valid, or does not authenticate."


class ObjectFile(SeekableReadable, Protocol):
    """An open stored object: ``readinto``, ``seek`` and ``close``."""

    def close(self) -> None:
        """Release the object."""


class ObjectBackend(Protocol):
    """Where encrypted objects live: bytes under keys ``"<tenant>/<name>"``.

    Guarantees: an object written through :meth:`create` becomes visible (replacing the
    old one) only whole, when the block ends without an exception; a failed write leaves
    the old object, or none. Missing keys raise :class:`~strongroom.errors.NotFoundError`.
    """

    def create(self, key: str) -> AbstractContextManager[Writable]:
        """A sink for a new object; committed when the block ends cleanly."""
        ...

    def open(self, key: str) -> ObjectFile:
        """The stored bytes as a seekable file (the caller closes it)."""
        ...

    def read(self, key: str) -> bytes:
        """All the stored bytes."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object."""
        ...

    def keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix``, in sorted order."""
        ...


def chunk_size_for(length: int | None, configured: int) -> int:
    """``configured``, or a smaller power of two (64 KiB at least) that holds ``length``."""
    if length is None or length >= configured:
        return configured
    return max(MIN_CHUNK_SIZE, 1 << length.bit_length())


def remaining_length(src: object) -> int | None:
    """Bytes left in a file object if it can tell (a regular file, BytesIO), else None.

    Only a hint (for the cache's byte count and the chunk size): a file may still grow.
    """
    tell = getattr(src, "tell", None)
    if tell is None:
        return None
    fileno = getattr(src, "fileno", None)
    try:
        if fileno is not None:
            info = os.fstat(fileno())
            if not stat.S_ISREG(info.st_mode):
                return None  # a pipe or a terminal: nothing to measure
            return max(info.st_size - int(tell()), 0)
    except (OSError, ValueError):
        pass  # no descriptor (BytesIO): try seeking
    seek, seekable = getattr(src, "seek", None), getattr(src, "seekable", None)
    try:
        if seek is None or seekable is None or not seekable():
            return None
        here = int(tell())
        end = int(seek(0, io.SEEK_END))
        seek(here)
    except (OSError, ValueError):
        return None
    return max(end - here, 0)


class ObjectReader(EncryptedFile):
    """:class:`~strongroom.data.reader.EncryptedFile` over a stored object; closes it too."""

    def __init__(self, src: ObjectFile, unwrap: Unwrap) -> None:
        self._object_file = src
        try:
            super().__init__(src, unwrap)
        except BaseException:
            src.close()
            raise

    def close(self) -> None:
        """Drop the cached chunk and close the stored object."""
        if not self.closed:
            self._object_file.close()
        super().close()


class ObjectStore:
    """Encrypted objects of one tenant in one backend, under data keys from ``keys``.

    ``key_id`` is the default KMS key of :meth:`put`; ``chunk_size`` the largest chunk
    (smaller objects get smaller chunks, 64 KiB at least).
    """

    def __init__(
        self,
        backend: ObjectBackend,
        keys: DataKeyProvider,
        *,
        tenant: str,
        key_id: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        check_chunk_size_or_fail(chunk_size)
        self._backend = backend
        self._keys = keys
        self._tenant = check_tenant(tenant)
        self._key_id = key_id
        self._chunk_size = chunk_size
        self._index = IndexFile(backend, keys, self._tenant)

    @property
    def tenant(self) -> str:
        """The tenant whose objects these are."""
        return self._tenant

    def put(
        self,
        name: str,
        data: bytes | bytearray | memoryview | Readable,
        context: Mapping[str, str] | None = None,
        *,
        key_id: str | None = None,
    ) -> StreamHeader:
        """Encrypt ``data`` (bytes or a binary file object) as object ``name``; return its header.

        The object replaces any object of that name only once completely written. Its
        version goes into the header and the object index (before and after the write,
        so a crash in between leaves the old or the new object readable).
        """
        key = self._key(name)
        key_id = key_id or self._key_id
        if key_id is None:
            raise ValidationError("A key id is required to put an object.")
        kms_context = {**check_user_context(context), TENANT_KEY: self._tenant}
        buffer = memoryview(data) if isinstance(data, bytes | bytearray | memoryview) else None
        length = buffer.nbytes if buffer is not None else remaining_length(data)
        data_key = data_key_for(self._keys, key_id, kms_context, length)
        with self._index.put(name, key_id) as version:
            sealer = new_sealer(
                data_key.plaintext,
                data_key.wrapped,
                data_key.key_arn,
                {**kms_context, OBJECT_KEY: name, VERSION_KEY: version},
                chunk_size_for(length, self._chunk_size),
            )
            with self._backend.create(key) as sink:
                if buffer is not None:
                    write_all(sink, memoryview(encrypt_buffer(buffer, sealer)))
                else:
                    encrypt_file(cast(Readable, data), sink, sealer)
        return sealer.header

    def get(self, name: str, *, context: Mapping[str, str] | None = None) -> bytes:
        """The whole plaintext of ``name`` (all verified before any is returned).

        With ``context``, the object must have been put with exactly that context.
        """

        def read(entry: Entry | None) -> bytes:
            raw = self._backend.read(self._key(name))
            with stream_errors():
                return bytes(decrypt_buffer(raw, self._unwrap(name, context, entry))[1])

        return self._versioned(name, read)

    def open(self, name: str, *, context: Mapping[str, str] | None = None) -> ObjectReader:
        """A seekable reader of ``name``'s plaintext that opens chunks on demand."""
        return self._versioned(
            name,
            lambda entry: ObjectReader(
                self._backend.open(self._key(name)), self._unwrap(name, context, entry)
            ),
        )

    def _versioned(self, name: str, fn: Callable[[Entry | None], T]) -> T:
        """``fn`` with the index entry; a version refused while a put ran is looked at again."""
        try:
            return fn(self._index.load(name)[0])
        except ObjectRolledBackError as refused:
            with ExitStack() as stack:
                try:
                    stack.enter_context(self._index.locked(name))
                except OSError:  # a read-only store: no put can be in flight either
                    raise refused from None
                return fn(self._index.load(name)[0])  # no put in flight: refused stays so

    def get_range(
        self, name: str, start: int, end: int, *, context: Mapping[str, str] | None = None
    ) -> bytes:
        """Plaintext bytes ``[start, end)`` of ``name`` (shorter at the end of the object).

        Reads and verifies only the chunks that hold them (and the final chunk when the
        range reaches the end).
        """
        if not 0 <= start <= end:
            raise ValidationError("A range needs 0 <= start <= end.")
        with self.open(name, context=context) as reader:
            reader.seek(start)
            if end >= reader.size:  # reaches the end: the final chunk is verified too
                return reader.read(-1)
            return reader.read(end - start)

    def delete(self, name: str) -> None:
        """Remove ``name``; :class:`~strongroom.errors.NotFoundError` if there is none.

        Its index entry goes too, so a (versioned) copy put back is refused.
        """
        key = self._key(name)
        with self._index.locked(name):
            self._backend.delete(key)
            self._index.forget(name)

    def list(self, prefix: str = "") -> list[str]:
        """Names of this tenant's objects that start with ``prefix``, sorted."""
        if "\x00" in prefix:
            raise ValidationError("A prefix cannot hold NUL.")
        head = f"{self._tenant}/"
        return [key[len(head) :] for key in self._backend.keys(head + prefix)]

    def _key(self, name: str) -> str:
        return f"{self._tenant}/{check_name(name)}"

    def _unwrap(self, name: str, context: Mapping[str, str] | None, entry: Entry | None) -> Unwrap:
        expected = None if context is None else check_user_context(context)

        def unwrap(header: StreamHeader) -> bytes:
            found = dict(header.context)
            if found.get(OBJECT_KEY) != name or found.get(TENANT_KEY) != self._tenant:
                raise InvalidCiphertextError(_INVALID)
            if expected is not None and caller_context_of(found) != expected:
                raise InvalidCiphertextError(_INVALID)
            check_version(name, entry, found)  # the header MAC then authenticates it
            return self._keys.decrypt_data_key(
                header.wrapped_key, kms_context_of(found), key_id=header.key_id
            )

        return unwrap

    def __repr__(self) -> str:
        return f"ObjectStore({self._backend!r}, tenant={self._tenant!r})"
