"""Run the ``strongroom`` console script from tests, as a user would.

::

    out = run_cli("admin", "tenant", "list", "--data-dir", str(data_dir))
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from strongroom.errors import InternalError


def console_script() -> str:
    """The ``strongroom`` console script of this interpreter's environment (not a shim)."""
    beside = Path(sys.executable).parent / "strongroom"
    if beside.exists():
        return str(beside)
    found = shutil.which("strongroom")
    if found is None:
        raise InternalError("the strongroom console script is not installed")
    return found


def run_cli(*args: str, env: dict[str, str] | None = None, expect: int = 0) -> str:
    """Run the ``strongroom`` console script; check its exit status; return its output."""
    done = subprocess.run(  # noqa: S603 (our own console script)
        [console_script(), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == expect, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout + done.stderr
