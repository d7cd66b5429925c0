"""The data directory config and the secret-free display of store URLs and HSM URIs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.cli.context import shown_root, shown_store_url
from strongroom.config import (
    DataDirConfig,
    default_store_url,
    load_config,
    resolve_data_dir,
    write_config,
)
from strongroom.errors import ValidationError


def test_data_dir_precedence() -> None:
    env = {"STRONGROOM_DATA_DIR": "/from/env"}
    assert resolve_data_dir("/opt", env) == Path("/opt")
    assert resolve_data_dir(None, env) == Path("/from/env")
    assert resolve_data_dir(None, {}) == Path(".strongroom")
    assert resolve_data_dir(None, {"STRONGROOM_DATA_DIR": ""}) == Path(".strongroom")


@given(st.text(min_size=1), st.text(min_size=1))
def test_config_round_trip(url: str, root: str) -> None:
    config = DataDirConfig(store_url=url, root_of_trust=root)
    assert DataDirConfig.from_json(config.to_json()) == config
    assert url not in repr(config) or url in "DataDirConfig(version=1)"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"version": 2, "store_url": "x", "root_of_trust": "local"}',
        b'{"version": 1, "root_of_trust": "local"}',
        b'{"version": 1, "store_url": "x"}',
        b'{"version": 1, "store_url": "", "root_of_trust": "local"}',
    ],
)
def test_bad_configs_are_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        DataDirConfig.from_json(raw)


def test_write_config_never_replaces(tmp_path: Path) -> None:
    config = DataDirConfig(default_store_url(tmp_path), "local")
    path = write_config(tmp_path, config)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_config(tmp_path) == config
    with pytest.raises(FileExistsError):
        write_config(tmp_path, DataDirConfig("sqlite:///elsewhere.db", "local"))
    assert load_config(tmp_path) == config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
    with pytest.raises(ValidationError, match="strongroom init"):
        load_config(tmp_path / "missing")


def test_secrets_are_not_shown() -> None:
    assert shown_store_url("postgresql://kms:hunter2@db:5432/kms?sslmode=require") == (
        "postgresql://kms:***@db:5432/kms?sslmode=require"
    )
    assert shown_store_url("postgresql://kms@db/kms") == "postgresql://kms@db/kms"
    assert shown_store_url("/var/lib/x.db") == "/var/lib/x.db"
    uri = "pkcs11:token=t;object=root?module-path=/usr/lib/x.so&pin-value=1234"
    assert "1234" not in shown_root(uri) and "object=root" in shown_root(uri)
    assert shown_root("local") == "local"
    assert shown_root("pkcs11:bogus=1") == "pkcs11:<unparsable URI>"
