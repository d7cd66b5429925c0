"""What the CLI refuses: a store password on argv (ps shows it), the reserved user name root."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from strongroom.testing.server import run_cli


def test_a_password_in_store_on_argv_is_refused(tmp_path: Path) -> None:
    for command in ("init", "server"):
        out = run_cli(
            command,
            "--data-dir",
            str(tmp_path / command),
            "--store",
            "postgresql://kms:hunter2-secret@127.0.0.1:1/kms",
            expect=1,
        )
        assert "STRONGROOM_STORE" in out and "PGPASSWORD" in out
        assert "hunter2-secret" not in out
        assert not (tmp_path / command / "config.json").exists()


def test_the_store_url_from_the_environment_may_hold_it(
    tmp_path: Path, postgres_server: Any
) -> None:
    url = postgres_server.create_database("store_from_env")
    with_password = url.replace("@", ":trust-ignores-it@", 1)
    env = {**os.environ, "STRONGROOM_STORE": with_password}
    out = run_cli("init", "--data-dir", str(tmp_path / "d"), "--json", env=env)
    assert json.loads(out)["StoreUrl"].startswith("postgresql://")
    assert "trust-ignores-it" not in out
    assert (tmp_path / "d" / "config.json").stat().st_mode & 0o777 == 0o600


def test_user_root_is_refused_by_the_cli(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    run_cli("init", "--data-dir", data)
    run_cli("admin", "tenant", "create", "acme", "--data-dir", data)
    out = run_cli(
        "admin",
        "access-key",
        "create",
        "--tenant",
        "acme",
        "--user",
        "root",
        "--data-dir",
        data,
        expect=1,
    )
    assert "reserved" in out and "--admin" in out
