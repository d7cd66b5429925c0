"""Object rollback: an older copy of an object put back in its place is refused.

Someone with write access to the object storage (a directory, a bucket) keeps an old copy
of an object's bytes and puts it back later. The object's version, in its authenticated
header, must be the one its index entry accepts. Objects written before the index existed
stay readable until they are replaced.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from strongroom.crypto.stream_io import encrypt_buffer
from strongroom.data import InProcessDataKeys
from strongroom.data.object_index import INDEX_PREFIX, Entry, check_version
from strongroom.data.object_names import OBJECT_KEY, TENANT_KEY, VERSION_KEY
from strongroom.data.objects import ObjectStore
from strongroom.data.objects_local import LocalBackend
from strongroom.data.objects_memory import MemoryBackend
from strongroom.data.streams import new_sealer
from strongroom.errors import InvalidCiphertextError, NotFoundError, ObjectRolledBackError
from strongroom.kms import Caller


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def store(
    backend: MemoryBackend, alice_keys: InProcessDataKeys, alice: Caller, alice_key: str
) -> ObjectStore:
    return ObjectStore(backend, alice_keys, tenant=alice.tenant, key_id=alice_key)


def test_an_older_copy_put_back_is_refused(
    store: ObjectStore, backend: MemoryBackend, alice: Caller
) -> None:
    key = f"{alice.tenant}/ledger"
    store.put("ledger", b"balance: 100")
    old = backend.read(key)
    store.put("ledger", b"balance: 0")
    backend.write(key, old)
    with pytest.raises(ObjectRolledBackError, match="rolled back"):
        store.get("ledger")
    with pytest.raises(ObjectRolledBackError):
        store.open("ledger")
    with pytest.raises(ObjectRolledBackError):
        store.get_range("ledger", 0, 3)
    store.put("ledger", b"balance: 5")  # a new put makes it whole again
    assert store.get("ledger") == b"balance: 5"


def test_a_deleted_object_put_back_is_refused(
    store: ObjectStore, backend: MemoryBackend, alice: Caller
) -> None:
    key = f"{alice.tenant}/gone"
    store.put("gone", b"secret plan")
    old = backend.read(key)
    store.delete("gone")
    backend.write(key, old)
    with pytest.raises(ObjectRolledBackError, match="does not know"):
        store.get("gone")
    store.put("gone", b"new plan")  # versions never repeat, even after a delete
    backend.write(key, old)
    with pytest.raises(ObjectRolledBackError):
        store.get("gone")


def test_index_entries_cannot_be_dropped_moved_or_swapped_with_objects(
    store: ObjectStore, backend: MemoryBackend, alice: Caller
) -> None:
    store.put("a", b"A")
    store.put("b", b"B")
    entry_a = f"{INDEX_PREFIX}{alice.tenant}/a"
    entry_b = f"{INDEX_PREFIX}{alice.tenant}/b"
    backend.write(entry_b, backend.read(entry_a))  # a's entry under b's name
    with pytest.raises(InvalidCiphertextError):
        store.get("b")
    backend.write(entry_b, backend.read(f"{alice.tenant}/b"))  # an object as an entry
    with pytest.raises(InvalidCiphertextError):
        store.get("b")
    backend.delete(entry_a)  # dropping the entry does not make an old copy acceptable
    with pytest.raises(ObjectRolledBackError):
        store.get("a")


def _put_unversioned(
    backend: MemoryBackend, keys: InProcessDataKeys, tenant: str, key_id: str, name: str
) -> None:
    """An object as Strongroom wrote it before the index existed (no version in its header)."""
    context = {TENANT_KEY: tenant}
    data_key = keys.generate_data_key(key_id, context)
    sealer = new_sealer(
        data_key.plaintext,
        data_key.wrapped,
        data_key.key_arn,
        {**context, OBJECT_KEY: name},
        1 << 16,
    )
    backend.write(f"{tenant}/{name}", bytes(encrypt_buffer(b"from before", sealer)))


def test_objects_from_before_the_index_stay_readable_until_replaced(
    store: ObjectStore,
    backend: MemoryBackend,
    alice_keys: InProcessDataKeys,
    alice: Caller,
    alice_key: str,
) -> None:
    _put_unversioned(backend, alice_keys, alice.tenant, alice_key, "old")
    assert store.get("old") == b"from before"
    legacy = backend.read(f"{alice.tenant}/old")
    store.put("old", b"replaced")
    backend.write(f"{alice.tenant}/old", legacy)
    with pytest.raises(ObjectRolledBackError, match="unversioned"):
        store.get("old")


def test_a_failed_put_leaves_the_old_version_acceptable(
    store: ObjectStore, backend: MemoryBackend, alice: Caller
) -> None:
    class Failing:
        def readinto(self, buffer: memoryview) -> int:
            raise OSError("read error")

    store.put("doc", b"v1")
    with pytest.raises(OSError, match="read error"):
        store.put("doc", Failing())
    assert store.get("doc") == b"v1"


def test_while_a_put_is_in_flight_both_versions_open() -> None:
    entry = Entry(["v1"])
    new = entry.begin_put()  # written to the index before the object
    for version in ("v1", new):  # a crash now leaves either object in place
        check_version("doc", entry, {VERSION_KEY: version})
    entry.end_put(new)
    check_version("doc", entry, {VERSION_KEY: new})
    with pytest.raises(ObjectRolledBackError):
        check_version("doc", entry, {VERSION_KEY: "v1"})
    with pytest.raises(ObjectRolledBackError):
        check_version("doc", Entry([]), {VERSION_KEY: new})


def test_rollback_of_a_file_in_a_directory_store(
    tmp_path: Path, alice_keys: InProcessDataKeys, alice: Caller, alice_key: str
) -> None:
    backend = LocalBackend(tmp_path / "objects")
    store = ObjectStore(backend, alice_keys, tenant=alice.tenant, key_id=alice_key)
    store.put("reports/q1", b"draft")
    path = backend.path_of(f"{alice.tenant}/reports/q1")
    shutil.copy(path, tmp_path / "saved")
    store.put("reports/q1", b"final")
    shutil.copy(tmp_path / "saved", path)
    with pytest.raises(ObjectRolledBackError):
        store.get("reports/q1")
    store.delete("reports/q1")
    with pytest.raises(NotFoundError):
        store.get("reports/q1")
