"""The authenticated index of a tenant's objects: which version of each object is current.

Every object put since this index exists carries its version number in its stream
header's context (``strongroom:version``, authenticated by the header MAC under the
object's data key). The index says, per name, which versions are acceptable now, so an
older copy of an object put back in place of the current one (a rollback) is refused
with :class:`~strongroom.errors.ObjectRolledBackError`, and so is a deleted object put
back.

Each name has its own small index entry, at backend key ``_index/<tenant>/<name>``
(outside every tenant's ``<tenant>/`` space: no tenant name starts with ``_``), encrypted
as a chunked stream like any object, under a data key from the key service; its header
context names the tenant, the object and ``strongroom:index = objects`` (the key service
sees the tenant and ``strongroom:index``), so an entry cannot be forged, edited, moved to
another name or swapped with an object. Its plaintext (``docs/formats.md``, "Object
index entry")::

    0x01 || JSON {"ok": [version, ...]}

A version is 16 random bytes in hex (so versions never repeat, even after a delete and
a new put of the name). ``ok`` lists the acceptable ones: the current version, and during
a put the new one too, so a crash between writing the object and its entry leaves either
readable. Deleting an object deletes its entry, so a versioned copy put back is refused
(and no key service is needed to delete). Objects written before the index existed carry
no version and are accepted while their name has no entry, or ``ok`` holds ``"-"`` (a
first put over such an object is in flight, or failed).

What this cannot see: an object and its index entry both put back to an earlier copy
(or the whole store rolled back); that needs state outside the store.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.crypto.stream import MIN_CHUNK_SIZE, StreamHeader
from strongroom.crypto.stream_io import decrypt_buffer, encrypt_buffer, write_all
from strongroom.data.cache import data_key_for
from strongroom.data.keys import DataKeyProvider
from strongroom.data.object_names import OBJECT_KEY, TENANT_KEY, VERSION_KEY
from strongroom.data.streams import new_sealer, stream_errors
from strongroom.errors import InvalidCiphertextError, NotFoundError, ObjectRolledBackError

if TYPE_CHECKING:
    from strongroom.data.objects import ObjectBackend

INDEX_FORMAT = 1
INDEX_CONTEXT_KEY = "strongroom:index"
INDEX_CONTEXT_VALUE = "objects"
INDEX_PREFIX = "_index/"
UNVERSIONED = "-"
"""In ``ok``: an object without a version (put before the index existed) is acceptable."""
VERSION_BYTES = 16


@dataclass
class Entry:
    """One name's index entry: the versions of the object acceptable now."""

    ok: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """The entry's plaintext: version byte and canonical JSON."""
        body = json.dumps({"ok": self.ok}, separators=(",", ":"), sort_keys=True)
        return bytes([INDEX_FORMAT]) + body.encode("ascii")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Entry:
        """Parse an entry's plaintext (authenticated already); anything odd is refused."""
        if not raw or raw[0] != INDEX_FORMAT:
            raise InvalidCiphertextError("The object index entry has an unknown format.")
        try:
            ok = json.loads(raw[1:])["ok"]
            if not isinstance(ok, list) or not all(isinstance(v, str) for v in ok):
                raise TypeError("ok")
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidCiphertextError("The object index entry is malformed.") from exc
        return cls(list(ok))

    def begin_put(self) -> str:
        """A new version; acceptable from now on, as is the current one until :meth:`end_put`."""
        version = secrets.token_hex(VERSION_BYTES)
        self.ok = [*self.ok[-1:], version]
        return version

    def end_put(self, version: str) -> None:
        """The put of ``version`` is complete: only it is acceptable now."""
        self.ok = [version]


def check_version(name: str, entry: Entry | None, context: Mapping[str, str]) -> None:
    """Refuse an object whose header has a version its index entry does not accept."""
    found = context.get(VERSION_KEY)
    if entry is None:
        if found is None:
            return  # written before the index existed, never put since
        raise ObjectRolledBackError(
            f"Object {name!r} is a copy the object index does not know (version {found}): it "
            "was deleted, or put back from an older copy. It is refused."
        )
    if (found or UNVERSIONED) not in entry.ok:
        current = entry.ok[-1] if entry.ok else "none"
        raise ObjectRolledBackError(
            f"Object {name!r} is version {found or 'unversioned'}, but the object index says "
            f"version {current}: it was rolled back to an older copy. It is refused."
        )


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class IndexFile:
    """Load and save the index entries of one tenant's objects, and lock one for a change.

    A backend with a ``lock(key)`` context manager (the local directory: ``flock``) is
    locked across processes; others (S3, memory) within this process only, so two hosts
    putting one object at the same moment may lose an entry update (which then refuses
    the object whose version it lost: a denial, never a rollback let through).
    """

    def __init__(self, backend: ObjectBackend, keys: DataKeyProvider, tenant: str) -> None:
        self._backend = backend
        self._keys = keys
        self._tenant = tenant

    def _where(self, name: str) -> str:
        return f"{INDEX_PREFIX}{self._tenant}/{name}"

    def _kms_context(self) -> dict[str, str]:
        return {TENANT_KEY: self._tenant, INDEX_CONTEXT_KEY: INDEX_CONTEXT_VALUE}

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Hold the lock of ``name``'s entry for a read-modify-write."""
        lock: Any = getattr(self._backend, "lock", None)
        if lock is not None:
            with lock(self._where(name)):
                yield
            return
        with _LOCKS_GUARD:
            local = _LOCKS.setdefault(id(self._backend), threading.Lock())
        with local:
            yield

    def load(self, name: str) -> tuple[Entry | None, str | None]:
        """``name``'s entry and the key it is under, or ``(None, None)`` if it has none."""
        try:
            raw = self._backend.read(self._where(name))
        except NotFoundError:
            return None, None
        kms_context = self._kms_context()
        expected = {**kms_context, OBJECT_KEY: name}

        def unwrap(header: StreamHeader) -> bytes:
            if dict(header.context) != expected:
                raise InvalidCiphertextError("The object index entry does not authenticate.")
            return self._keys.decrypt_data_key(
                header.wrapped_key, kms_context, key_id=header.key_id
            )

        with stream_errors():
            header, plaintext = decrypt_buffer(raw, unwrap)
        return Entry.from_bytes(bytes(plaintext)), header.key_id

    @contextlib.contextmanager
    def put(self, name: str, key_id: str) -> Iterator[str]:
        """Lock ``name``, make its next version acceptable, yield it; current when done.

        If the block fails, the entry goes back to what it accepted before (a crash in
        the block leaves both versions acceptable: whichever object is there opens).
        """
        with self.locked(name):
            found, entry_key = self.load(name)
            entry = found or Entry(ok=[UNVERSIONED])  # an object from before the index
            before = list(entry.ok)
            version = entry.begin_put()
            self.save(name, entry, entry_key or key_id)
            try:
                yield version
            except BaseException:
                entry.ok = before
                with contextlib.suppress(Exception):
                    self.save(name, entry, entry_key or key_id)
                raise
            entry.end_put(version)
            self.save(name, entry, entry_key or key_id)

    def forget(self, name: str) -> None:
        """Delete ``name``'s entry (the object is gone: no copy of it is acceptable)."""
        with contextlib.suppress(NotFoundError):
            self._backend.delete(self._where(name))

    def save(self, name: str, entry: Entry, key_id: str) -> None:
        """Encrypt and store ``name``'s entry (replacing the old one whole) under ``key_id``."""
        plaintext = entry.to_bytes()
        kms_context = self._kms_context()
        data_key = data_key_for(self._keys, key_id, kms_context, len(plaintext))
        sealer = new_sealer(
            data_key.plaintext,
            data_key.wrapped,
            data_key.key_arn,
            {**kms_context, OBJECT_KEY: name},
            MIN_CHUNK_SIZE,
        )
        with self._backend.create(self._where(name)) as sink:
            write_all(sink, memoryview(encrypt_buffer(plaintext, sealer)))
