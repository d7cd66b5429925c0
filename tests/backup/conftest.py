"""A repository of tenant alice in a temporary directory, keyed by an in-process KMS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.backup.repository import Repository
from strongroom.backup.store import LocalStore
from strongroom.data import InProcessDataKeys
from strongroom.kms import Caller, KeyService

MIB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A ``strongroom server`` (HTTPS, its own CA) for one test module: the KMS of the CLI."""
    from strongroom.testing.e2e_server import start_server

    with start_server(tmp_path_factory.mktemp("kms") / "data") as running:
        yield running


@pytest.fixture
def alice_keys(service: KeyService, alice: Caller) -> InProcessDataKeys:
    return InProcessDataKeys(service, alice)


@pytest.fixture
def alice_key(service: KeyService, alice: Caller) -> str:
    return str(service.call(alice, "CreateKey", {})["KeyMetadata"]["Arn"])


@pytest.fixture
def repo(tmp_path: Path, alice_keys: InProcessDataKeys, alice_key: str) -> Repository:
    return Repository.init(LocalStore(tmp_path / "repo"), alice_keys, alice_key)


def make_tree(root: Path) -> dict[str, bytes]:
    """A small source tree with every node type; returns file contents by relative path."""
    files = {
        "a.bin": os.urandom(3 * MIB + 17),
        "empty": b"",
        "sub/log.txt": b"GET /index.html 200\n" * 50000,
        "sub/deeper/small": b"hello",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "link").symlink_to("a.bin")
    os.link(root / "sub/deeper/small", root / "hard")
    with open(root / "sparse", "wb") as f:
        f.truncate(9 * MIB)
        f.seek(5 * MIB)
        f.write(b"middle")
    files["sparse"] = (root / "sparse").read_bytes()
    files["hard"] = b"hello"
    os.chmod(root / "sub/deeper/small", 0o640)
    return files
