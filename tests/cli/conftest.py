"""Run the real ``strongroom`` console script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.testing.server import console_script


def _script() -> list[str]:
    """The console script of this interpreter's environment (not a pyenv shim)."""
    return [console_script()]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Runner = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path) -> Runner:
    """``cli("admin", "tenant", "list", expect=0)``: run strongroom, check the exit code.

    The environment has no ``STRONGROOM_DATA_DIR`` unless ``env`` sets one; the working
    directory is ``cwd`` or the test's tmp_path.
    """
    script = _script()

    def run(
        *args: str,
        expect: int | None = 0,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Result:
        environ = {k: v for k, v in os.environ.items() if k != "STRONGROOM_DATA_DIR"}
        environ.update(env or {})
        environ["COLUMNS"] = "200"
        proc = subprocess.run(
            [*script, *args],
            capture_output=True,
            text=True,
            env=environ,
            cwd=cwd or tmp_path,
            timeout=120,
            check=False,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if expect is not None:
            assert result.code == expect, (args, result)
        assert "Traceback" not in result.err, result.err
        return result

    return run
