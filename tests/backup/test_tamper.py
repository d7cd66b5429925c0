"""Tampering: any flipped byte, truncation, deletion, swap or replay of a pack, index or
snapshot file is caught by ``check --read-data`` and by restore, which writes only
verified data (files completed from sound packs; no partial or temporary file remains)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.backup.checker import Checker
from strongroom.backup.repository import Repository
from strongroom.backup.restorer import Restorer
from strongroom.backup.store import LocalStore
from strongroom.data import InProcessDataKeys
from strongroom.errors import StrongroomError

from .conftest import make_tree
from .test_roundtrip import backup

Tamper = Callable[[Path, list[Path]], None]


def flip(at: float) -> Tamper:
    def run(path: Path, others: list[Path]) -> None:
        data = bytearray(path.read_bytes())
        data[int(at * (len(data) - 1))] ^= 0x01
        path.write_bytes(bytes(data))

    return run


def truncate(path: Path, others: list[Path]) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def extend(path: Path, others: list[Path]) -> None:
    path.write_bytes(path.read_bytes() + b"\0")


def delete(path: Path, others: list[Path]) -> None:
    path.unlink()


def swap(path: Path, others: list[Path]) -> None:
    other = next(p for p in others if p != path)
    a, b = path.read_bytes(), other.read_bytes()
    path.write_bytes(b)
    other.write_bytes(a)


ATTACKS = {
    "flip-first": flip(0.0), "flip-middle": flip(0.5), "flip-last": flip(1.0),
    "truncate": truncate, "extend": extend, "delete": delete, "swap": swap,
}  # fmt: skip


@pytest.fixture
def setup(repo: Repository, tmp_path: Path) -> tuple[Repository, str]:
    src = tmp_path / "src"
    make_tree(src)
    (src / "more.bin").write_bytes(bytes(range(256)) * 40000)  # a second pack's worth
    first = backup(repo, src)
    (src / "later.txt").write_text("later")
    backup(repo, src)
    return repo, first


def files_of(repo: Repository, prefix: str) -> list[Path]:
    store = repo.store
    assert isinstance(store, LocalStore)
    return [store.path_of(n) for n in store.list(prefix)]


def restored_files(target: Path) -> list[Path]:
    return (
        [p for p in target.rglob("*") if p.is_file() or p.is_symlink()] if target.exists() else []
    )


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("kind", ["data/", "index/", "snapshots/"])
def test_tampering_is_caught(
    setup: tuple[Repository, str], kind: str, attack: str, tmp_path: Path
) -> None:
    repo, first = setup
    targets = files_of(repo, kind)
    if attack == "swap" and len(targets) < 2:
        pytest.skip("one file of this kind")
    victim = targets[0]
    if kind == "snapshots/":
        # the first: a deleted latest snapshot is known to no later one (docs/formats.md)
        victim = next(p for p in targets if p.name.startswith(first))
    ATTACKS[attack](victim, targets)
    fresh = Repository.open(repo.store, repo.kms)
    report = Checker(fresh).run(read_data=True)
    assert not report.ok, (kind, attack)
    out = tmp_path / "out"
    with pytest.raises(StrongroomError):
        for snapshot_id in sorted(fresh.snapshot_ids()):
            if out.exists():
                shutil.rmtree(out)
            Restorer(fresh, fresh.load_index()).restore(fresh.find_snapshot(snapshot_id), out)
    for path in restored_files(out):  # what is there was verified: it equals the source
        source = tmp_path / path.relative_to(out)
        if path.is_symlink():
            assert path.readlink() == source.readlink()
        else:
            assert path.read_bytes() == source.read_bytes(), path
        assert not path.name.endswith(".sr-restore")


def test_files_of_another_repository_are_caught(
    setup: tuple[Repository, str], alice_keys: InProcessDataKeys, alice_key: str, tmp_path: Path
) -> None:
    repo, _ = setup
    other = Repository.init(LocalStore(tmp_path / "other"), alice_keys, alice_key)
    src = tmp_path / "src"
    backup(other, src)
    for kind in ("index/", "snapshots/", "data/"):  # replayed into this repository
        for name in other.store.list(kind):
            repo.store.put(name, other.store.get(name))
    report = Checker(Repository.open(repo.store, repo.kms)).run(read_data=True)
    assert not report.ok
    assert any("snapshot" in e for e in report.errors) and any("index" in e for e in report.errors)


def test_a_key_file_of_another_repository_is_refused(
    setup: tuple[Repository, str], alice_keys: InProcessDataKeys, alice_key: str, tmp_path: Path
) -> None:
    repo, _ = setup
    other = Repository.init(LocalStore(tmp_path / "other"), alice_keys, alice_key)
    for name in other.store.list("keys/"):
        repo.store.put(name, other.store.get(name))
    report = Checker(Repository.open(repo.store, repo.kms)).run()
    assert any("key files" in e for e in report.errors)
