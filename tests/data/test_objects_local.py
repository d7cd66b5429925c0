"""The local directory backend: layout on disk, atomic and durable writes, leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.data import InProcessDataKeys
from strongroom.data.object_names import check_name
from strongroom.data.objects import ObjectStore
from strongroom.data.objects_local import LocalBackend
from strongroom.kms import Caller


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def store(root: Path, alice_keys: InProcessDataKeys, alice: Caller, alice_key: str) -> ObjectStore:
    return ObjectStore(LocalBackend(root), alice_keys, tenant=alice.tenant, key_id=alice_key)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_names_map_inside_the_root_without_clashes(
    store: ObjectStore, root: Path, alice: Caller, tmp_path: Path
) -> None:
    names = ["a", "a/b", "..", "../x", ".", "a.d/c", "a.o", "-rf"]
    for name in names:
        store.put(name, name.encode())
    t = f"{alice.tenant}.d"
    paths = ["a.o", "a.d/b.o", "...o", "...d/x.o", "..o", "a.d.d/c.o", "a.o.o", "-rf.o"]
    index = f"_index.d/{t}"  # each object's version entry, and its lock file
    assert files_under(root) == sorted(
        [f"{t}/{p}" for p in paths]
        + [f"{index}/{p}" for p in paths]
        + [f"{index}/{p[:-2]}.lock" for p in paths]
    )
    assert files_under(tmp_path / "objects") == files_under(root)  # nothing outside
    assert store.list() == sorted(names)
    for name in names:
        assert store.get(name) == name.encode()


def test_modes_are_private(store: ObjectStore, root: Path, alice: Caller) -> None:
    store.put("dir/doc", b"x")
    path = LocalBackend(root).path_of(f"{alice.tenant}/dir/doc")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_write_is_fsynced_then_renamed_then_the_directory_fsynced(
    store: ObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("warm", b"x")  # directories exist now
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        assert Path(src).parent == Path(dst).parent and Path(src).name.endswith(".part")
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.put("doc", b"y" * 1000)
    # the index entry (new version pending), the object, the index entry (version current)
    assert events == ["fsync file", "rename", "fsync dir"] * 3
    events.clear()
    store.delete("doc")
    assert events == ["fsync dir", "fsync dir"]  # the object, then its index entry


def test_failed_write_leaves_no_temporary_file(store: ObjectStore, root: Path) -> None:
    class Failing:
        def readinto(self, buffer: memoryview) -> int:
            raise OSError("read error")

    store.put("doc", b"old")
    before = files_under(root)
    with pytest.raises(OSError, match="read error"):
        store.put("doc", Failing())
    with pytest.raises(OSError, match="read error"):
        store.put("new/doc", Failing())
    # no temporary file; only the new name's index entry (accepting no version) and lock
    assert [f for f in files_under(root) if "/new.d/" not in f] == before
    assert not any(f.endswith(".part") for f in files_under(root))
    assert store.get("doc") == b"old"


def test_crash_leftovers_and_foreign_files_are_not_listed(
    store: ObjectStore, root: Path, alice: Caller
) -> None:
    store.put("doc", b"x")
    tenant_dir = root / f"{alice.tenant}.d"
    (tenant_dir / ".tmp-abc123.part").write_bytes(b"half an object")
    (tenant_dir / "README").write_text("not an object")
    (tenant_dir / "stray").mkdir()
    (tenant_dir / "stray" / "x.o").write_bytes(b"not in a .d directory")
    assert store.list() == ["doc"]


segments = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="/\x00"),
    min_size=1,
    max_size=12,
)
names = st.lists(segments, min_size=1, max_size=4).map("/".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=1, max_size=6, unique=True))
def test_any_valid_names_map_inside_the_root_and_list_back(
    tmp_path_factory: pytest.TempPathFactory, batch: list[str]
) -> None:
    root = tmp_path_factory.mktemp("names")
    backend = LocalBackend(root)
    for name in batch:
        assert check_name(name) == name
        path = backend.path_of(f"t/{name}")
        assert path.resolve().is_relative_to(root.resolve())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # the layout only; writes through create() are tested above
    assert list(backend.keys("t/")) == sorted(f"t/{n}" for n in batch)
    for name in batch:
        prefix = name[: len(name) // 2]
        expected = sorted(f"t/{n}" for n in batch if n.startswith(prefix))
        assert list(backend.keys(f"t/{prefix}")) == expected


def test_a_symlinked_directory_inside_the_store_is_never_followed(
    store: ObjectStore, root: Path, alice: Caller, tmp_path: Path
) -> None:
    from strongroom.errors import StoreError

    store.put("docs/readme", b"first")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.o").write_bytes(b"outside")
    tenant_dir = root / f"{alice.tenant}.d"
    (tenant_dir / "evil.d").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StoreError, match="symbolic link"):
        store.put("evil/new", b"would land outside")
    with pytest.raises(StoreError, match="symbolic link"):
        store.get("evil/secret")
    with pytest.raises(StoreError, match="symbolic link"):
        store.delete("evil/secret")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["secret.o"]
    assert store.get("docs/readme") == b"first"


def test_a_symlinked_object_file_is_refused(
    store: ObjectStore, root: Path, alice: Caller, tmp_path: Path
) -> None:
    from strongroom.errors import StoreError

    store.put("a", b"real")
    store.put("b", b"other")
    tenant_dir = root / f"{alice.tenant}.d"
    (tenant_dir / "b.o").unlink()
    (tenant_dir / "b.o").symlink_to(tenant_dir / "a.o")
    with pytest.raises(StoreError, match="symbolic link"):
        store.get("b")
    with pytest.raises(StoreError, match="symbolic link"):
        store.put("b", b"through the link")
    assert store.get("a") == b"real"
