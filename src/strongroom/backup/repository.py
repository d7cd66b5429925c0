"""An open repository: its config, its secrets (through the KMS), and reading its files.

Writing a backup is :mod:`strongroom.backup.archiver`; this module holds what every
command shares: ``init``, ``open``, the secrets of the session (their key files are
:mod:`strongroom.backup.keyfiles`), the index, snapshots, trees and verified blobs.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime

import zstandard

from strongroom.backup.config import KeyFile, RepoConfig
from strongroom.backup.errors import CorruptError
from strongroom.backup.index import Index, Location, decode_index, encode_index
from strongroom.backup.keyfiles import BackupKms, new_secret, read_key_files, unwrap
from strongroom.backup.keyring import (
    REPO_ID_BYTES,
    SECRET_ID_BYTES,
    IndexKeys,
    Purpose,
    SessionKey,
)
from strongroom.backup.pack import COMP_ZSTD, TYPE_TREE, PackEntry, PackPrefix, open_blob
from strongroom.backup.sealed import (
    KIND_INDEX,
    KIND_SNAPSHOT,
    KIND_TOMBSTONE,
    seal,
    sealed_sid,
    unseal,
)
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.store import RepoStore
from strongroom.backup.tree import Node, decode_tree
from strongroom.crypto.hazmat import random_bytes
from strongroom.errors import AlreadyExistsError, NotFoundError

CONFIG = "config"
MAX_BLOB_BYTES = 64 << 20


def now_rfc3339() -> str:
    """The current UTC time, RFC 3339 with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pack_name(pack: str) -> str:
    """The store name of a pack."""
    return f"data/{pack[:2]}/{pack}"


class Repository:
    """An open repository (use :meth:`init` or :meth:`open`)."""

    def __init__(
        self, store: RepoStore, kms: BackupKms, config: RepoConfig, keys: IndexKeys, key_id: str
    ) -> None:
        self.store = store
        self.kms = kms
        self.config = config
        self.keys = keys
        self.key_id = key_id
        self._sessions: dict[bytes, SessionKey] = {config.index_sid: keys.session}
        self._key_files: dict[bytes, list[KeyFile]] | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def repo_id(self) -> bytes:
        """The repository's random 16-byte id."""
        return self.config.repo_id

    # -- init / open --------------------------------------------------------------------

    @classmethod
    def init(cls, store: RepoStore, kms: BackupKms, key_id: str) -> Repository:
        """Create a repository whose index secret is a new data key of ``key_id``."""
        if store.exists(CONFIG):
            raise AlreadyExistsError(f"{store.describe()}: a repository exists there already.")
        repo_id, sid = random_bytes(REPO_ID_BYTES), random_bytes(SECRET_ID_BYTES)
        data_key = new_secret(store, kms, key_id, repo_id, sid, Purpose.INDEX, now_rfc3339())
        keys = IndexKeys.derive(repo_id, sid, data_key.plaintext)
        config = RepoConfig(repo_id, sid)
        store.put(CONFIG, config.encode(keys))  # last: a repository exists once it is whole
        return cls(store, kms, config, keys, data_key.key_arn)

    @classmethod
    def open(cls, store: RepoStore, kms: BackupKms) -> Repository:
        """Open a repository: read the config, unwrap the index secret, check the config."""
        try:
            raw = store.get(CONFIG)
        except NotFoundError:
            raise NotFoundError(f"{store.describe()}: no repository there (run init).") from None
        config = RepoConfig.parse_unverified(raw)
        index_files = read_key_files(store, config.repo_id, config.index_sid)
        secret, key_file = unwrap(kms, index_files.get(config.index_sid, []))
        keys = IndexKeys.derive(config.repo_id, config.index_sid, secret)
        config.verify(raw, keys)
        return cls(store, kms, config, keys, key_file.kms_key)

    # -- secrets ------------------------------------------------------------------------

    def key_files(self, refresh: bool = False) -> dict[bytes, list[KeyFile]]:
        """Every key file, by secret id."""
        with self._lock:
            if self._key_files is None or refresh:
                self._key_files = read_key_files(self.store, self.repo_id)
            return self._key_files

    def session_key(self, sid: bytes) -> SessionKey:
        """The key of secret ``sid`` (one KMS Decrypt, then cached for this process)."""
        with self._lock:
            found = self._sessions.get(sid)
        if found is not None:
            return found
        files = read_key_files(self.store, self.repo_id, sid).get(sid, [])
        secret, key_file = unwrap(self.kms, files)
        key = SessionKey.derive(self.repo_id, sid, key_file.purpose, secret)
        with self._lock:
            self._sessions[sid] = key
        return key

    def new_session(self) -> SessionKey:
        """A new data secret for one ``create`` run, its key file written first."""
        sid = random_bytes(SECRET_ID_BYTES)
        data_key = new_secret(
            self.store, self.kms, self.key_id, self.repo_id, sid, Purpose.DATA, now_rfc3339()
        )
        key = SessionKey.derive(self.repo_id, sid, Purpose.DATA, data_key.plaintext)
        with self._lock:
            self._sessions[sid] = key
        return key

    # -- index --------------------------------------------------------------------------

    def index_names(self) -> list[str]:
        """The index files' names (``index/<hex>``)."""
        return list(self.store.list("index/"))

    def read_index_file(self, name: str) -> dict[str, list[PackEntry]]:
        """One index file, checked (name = SHA-256, sealed under the index secret)."""
        data = self.store.get(name)
        if hashlib.sha256(data).hexdigest() != name.rsplit("/", 1)[-1]:
            raise CorruptError(f"Index file {name} is corrupt.")
        try:
            return decode_index(unseal(self.keys.session, KIND_INDEX, data))
        except CorruptError:
            raise CorruptError(f"Index file {name} is corrupt.") from None

    def load_index(self) -> Index:
        """Every index file merged."""
        index = Index()
        for name in self.index_names():
            for pack, entries in self.read_index_file(name).items():
                index.add_pack(pack, entries)
        return index

    def save_index(self, packs: Mapping[str, list[PackEntry]]) -> str:
        """Write one index file for ``packs``; its name."""
        data = seal(self.keys.session, KIND_INDEX, encode_index(packs))
        name = f"index/{hashlib.sha256(data).hexdigest()}"
        self.store.put(name, data)
        return name

    # -- snapshots ----------------------------------------------------------------------

    def snapshot_ids(self) -> list[str]:
        """Every snapshot's id (hex)."""
        return [name.split("/", 1)[1] for name in self.store.list("snapshots/")]

    def load_snapshot(self, snapshot_id: str) -> Snapshot:
        """One snapshot, checked (its name is the SHA-256 of the file)."""
        data = self.store.get(f"snapshots/{snapshot_id}")
        if hashlib.sha256(data).hexdigest() != snapshot_id:
            raise CorruptError(f"Snapshot {snapshot_id[:12]} is corrupt.")
        try:
            key = self.session_key(sealed_sid(data, KIND_SNAPSHOT))
            return Snapshot.decode(unseal(key, KIND_SNAPSHOT, data), snapshot_id)
        except CorruptError:
            raise CorruptError(f"Snapshot {snapshot_id[:12]} is corrupt.") from None

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first; :class:`CorruptError` if one was deleted unforgotten."""
        found = sorted((self.load_snapshot(i) for i in self.snapshot_ids()), key=lambda s: s.time)
        missing = self.missing_snapshots(found)
        if missing:
            raise CorruptError(
                f"Snapshot {missing[0][:12]} was removed without forget "
                f"({len(missing)} missing): the repository was tampered with."
            )
        return found

    def missing_snapshots(self, found: list[Snapshot]) -> list[str]:
        """Ids that some snapshot knew, that are gone and have no valid tombstone."""
        present = {s.id for s in found}
        known = {k for s in found for k in s.known} - present
        if not known:
            return []
        return sorted(k for k in known if not self.has_tombstone(k))

    def tombstone_name(self, snapshot_id: str) -> str:
        """Where ``forget`` records that it removed a snapshot."""
        return f"tombstones/{snapshot_id}"

    def write_tombstone(self, snapshot_id: str) -> None:
        """Record (sealed under the index secret) that ``forget`` removes a snapshot."""
        body = bytes.fromhex(snapshot_id)
        self.store.put(
            self.tombstone_name(snapshot_id), seal(self.keys.session, KIND_TOMBSTONE, body)
        )

    def has_tombstone(self, snapshot_id: str) -> bool:
        """Whether a valid tombstone says ``snapshot_id`` was forgotten."""
        try:
            data = self.store.get(self.tombstone_name(snapshot_id))
            return unseal(self.keys.session, KIND_TOMBSTONE, data) == bytes.fromhex(snapshot_id)
        except (NotFoundError, CorruptError):
            return False

    def save_snapshot(self, session: SessionKey, snapshot: Snapshot) -> str:
        """Write a snapshot sealed under ``session``; its id."""
        data = seal(session, KIND_SNAPSHOT, snapshot.encode())
        snapshot_id = hashlib.sha256(data).hexdigest()
        until = parse_time(snapshot.retain_until) if snapshot.retain_until else None
        self.store.put(f"snapshots/{snapshot_id}", data, retain_until=until)
        return snapshot_id

    def find_snapshot(self, ref: str) -> Snapshot:
        """The snapshot named by an id, a unique id prefix, or ``latest``.

        Every snapshot is read (and the chain of known snapshots checked), so a snapshot
        deleted behind ``forget``'s back fails here too.
        """
        found = self.snapshots()
        if ref == "latest":
            if not found:
                raise NotFoundError("The repository has no snapshots.")
            return found[-1]
        matches = [s for s in found if s.id.startswith(ref.lower())]
        if not ref or not matches:
            raise NotFoundError(f"No snapshot {ref!r}.")
        if len(matches) > 1:
            raise NotFoundError(f"Snapshot prefix {ref!r} is ambiguous ({len(matches)} match).")
        return matches[0]

    # -- blobs --------------------------------------------------------------------------

    def blob_opener(self, prefix: PackPrefix) -> Callable[[PackEntry, bytes | memoryview], bytes]:
        """A function that decrypts, decompresses and verifies the blobs of one pack."""
        key = self.session_key(prefix.sid)
        aead = prefix.aead(key)  # checks the pack's commitment first

        def open_one(entry: PackEntry, sealed: bytes | memoryview) -> bytes:
            plain = open_blob(key, prefix, aead, entry, sealed)
            if entry.compression == COMP_ZSTD:
                try:
                    plain = self._decompressor().decompress(
                        plain, max_output_size=min(entry.plain_length, MAX_BLOB_BYTES)
                    )
                except zstandard.ZstdError as exc:
                    raise CorruptError("A pack file is corrupt.") from exc
            self.verify_blob(entry, plain)
            return plain

        return open_one

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        """The calling thread's decompressor (one context per thread, reused blob after blob)."""
        found: zstandard.ZstdDecompressor | None = getattr(self._local, "zstd", None)
        if found is None:
            found = self._local.zstd = zstandard.ZstdDecompressor()
        return found

    def verify_blob(self, entry: PackEntry, plain: bytes) -> None:
        """Check a blob's plaintext against its id (the keyed hash)."""
        ident = self.keys.tree_id(plain) if entry.kind == TYPE_TREE else self.keys.data_id(plain)
        if len(plain) != entry.plain_length or ident != entry.blob_id:
            raise CorruptError("A pack file is corrupt.")

    def read_blob(self, location: Location) -> bytes:
        """One blob, read with two ranged reads (the pack prefix and the blob)."""
        name = pack_name(location.pack)
        prefix = PackPrefix.parse(self.store.get_range(name, 0, 85))
        sealed = self.store.get_range(name, location.entry.offset, location.entry.length)
        return self.blob_opener(prefix)(location.entry, sealed)

    def load_tree(self, index: Index, tree_id: bytes) -> list[Node]:
        """A tree by id (it must be in the index)."""
        location = index.get(tree_id)
        if location is None or location.entry.kind != TYPE_TREE:
            raise CorruptError(f"Tree {tree_id.hex()[:12]} is missing from the repository.")
        return decode_tree(self.read_blob(location))

    def walk(self, index: Index, tree_id: bytes, path: str = "") -> Iterator[tuple[str, Node]]:
        """Every node under a tree, depth first, with its path from the snapshot root."""
        for node in self.load_tree(index, tree_id):
            here = f"{path}/{node.name}" if path else node.name
            yield here, node
            if node.type == "dir" and node.subtree is not None:
                yield from self.walk(index, node.subtree, here)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (``Z`` or an offset) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
