import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import ValidationError
from strongroom.store import PostgresStore, SqliteStore, open_store


def test_sqlite_urls_and_bare_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url, expected in [
        (f"sqlite://{tmp_path}/abs.db", tmp_path / "abs.db"),
        ("sqlite://rel/r.db", tmp_path / "rel" / "r.db"),
        (str(tmp_path / "bare.db"), tmp_path / "bare.db"),
        ("plain.db", tmp_path / "plain.db"),
    ]:
        expected.parent.mkdir(exist_ok=True)
        store = open_store(url)
        assert isinstance(store, SqliteStore)
        store.write(lambda tx: tx.put("t", "k", "n", b"v"))
        store.close()
        assert expected.exists(), url


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls(postgres_server: Any, scheme: str) -> None:
    dsn = postgres_server.create_database(f"open_{scheme}_{os.getpid()}")
    store = open_store(dsn.replace("postgresql://", f"{scheme}://"))
    assert isinstance(store, PostgresStore)
    store.write(lambda tx: tx.put("t", "k", "n", b"v"))
    assert store.read(lambda tx: tx.get("t", "k", "n")) == b"v"
    store.close()


@pytest.mark.parametrize("url", ["", "sqlite://", "mysql://db/x", "s3://bucket/key"])
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        open_store(url)


def test_importing_the_package_loads_no_postgres_driver() -> None:
    code = "import sys, strongroom.store; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
