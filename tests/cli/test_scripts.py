"""``scripts/strongroom`` and ``scripts/venv.sh``: the README's commands pick the right
virtualenv (issue 18, point 1). Making a new one needs PyPI, which tests do not reach:
that path is checked by hand in a throwaway clone with Debian's /usr/bin/python3 first on
PATH (PEP 668), as CHANGELOG and the issue's closing note say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def _bash(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "STRONGROOM_VENV")}
    environ.update(env)
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=environ, timeout=120
    )


def test_an_active_virtualenv_is_used_else_dot_venv(tmp_path: Path) -> None:
    source = f". {ROOT / 'scripts' / 'venv.sh'}; venv_dir"
    assert _bash(source, VIRTUAL_ENV=str(VENV)).stdout.strip() == str(VENV)
    assert _bash(source).stdout.strip() == str(ROOT / ".venv")
    assert _bash(source, STRONGROOM_VENV=str(tmp_path)).stdout.strip() == str(tmp_path)
    # an "active" virtualenv that is no virtualenv is not taken
    assert _bash(source, VIRTUAL_ENV=str(tmp_path / "gone")).stdout.strip() == str(ROOT / ".venv")


def test_scripts_strongroom_runs_the_cli_of_the_active_virtualenv(tmp_path: Path) -> None:
    stamp = VENV / ".strongroom-installed-test"
    if not stamp.exists() and not (VENV / ".strongroom-installed").exists():
        pytest.skip("this virtualenv was not made by scripts/test.sh (no install stamp)")
    done = _bash(
        f"cd {tmp_path} && bash {ROOT / 'scripts' / 'strongroom'} env --help",
        VIRTUAL_ENV=str(VENV),
        PATH="/usr/bin:/bin",
    )
    assert done.returncode == 0, done.stderr
    assert "Installing" not in done.stderr  # nothing to install: the stamp matches
    assert "AWS_ENDPOINT_URL_KMS" in " ".join(done.stdout.split())
