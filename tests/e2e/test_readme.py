"""The README's commands, run as a new user would run them (issue 18).

In a fresh directory: the README's server command (``bash scripts/strongroom server``)
in the background, then, in one bash script, every fenced block of "A 5-minute tour"
(shell and Python), "Encryption at rest" and "Encryption in transit", in order, with
``examples/`` beside them. So the README cannot drift from the code again.

What differs from a person at a terminal, and why:

- the server gets ``--port`` of a free port, and the fixed ports and sockets of the
  transit section are replaced by free ones / private paths, so parallel runs and other
  programs on this machine cannot collide with it;
- ``pip install ...`` lines are skipped: the test environment has the AWS CLI already;
- ``set -e``: any failing line fails the test (lines meant to fail say ``|| ...``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strongroom.testing.server import free_port

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("A 5-minute tour", "Encryption at rest", "Encryption in transit")
FIXED_PORTS = ("8444", "18080", "15080", "15443", "9901")

pytestmark = pytest.mark.skipif(shutil.which("aws") is None, reason="needs the AWS CLI")


def readme_blocks(text: str) -> list[tuple[str, str, str]]:
    """``(section, language, code)`` of every fenced block, in order."""
    blocks, section = [], ""
    for match in re.finditer(r"^## ([^\n]+)$|^```(\w+)\n(.*?)^```$", text, re.M | re.S):
        if match.group(1):
            section = match.group(1).strip()
        else:
            blocks.append((section, match.group(2), match.group(3)))
    return blocks


def tour_script(text: str, replace: dict[str, str]) -> str:
    """The bash script of the sections to run, with ``replace`` applied."""
    lines = ["set -eu"]
    for section, language, code in readme_blocks(text):
        if section not in SECTIONS:
            continue
        for old, new in replace.items():
            code = code.replace(old, new)
        if language == "sh":
            kept = [line for line in code.splitlines() if not line.startswith("pip install")]
            lines += [f"# -- {section}", *kept]
        elif language == "python":
            lines += [f"# -- {section} (Python)", "python3 - <<'PYTHON'", code.rstrip(), "PYTHON"]
    lines += ["echo README-DONE"]
    return "\n".join(lines) + "\n"


def test_readme_blocks_are_found() -> None:
    found = {(s, lang) for s, lang, _ in readme_blocks((ROOT / "README.md").read_text())}
    for section in SECTIONS:
        assert (section, "sh") in found, section
    assert ("A 5-minute tour", "python") in found


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}",
        VIRTUAL_ENV=str(Path(sys.executable).parent.parent),
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.timeout(600)
def test_readme_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "checkout-user"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    replace = {port: str(free_port()) for port in FIXED_PORTS}
    replace["/tmp/strongroom-agent.sock"] = str(tmp_path / "agent.sock")
    replace["/tmp/node-7.sock"] = str(tmp_path / "node-7.sock")
    for config in (work / "examples").rglob("*.yaml"):
        text = config.read_text()
        for old, new in replace.items():
            text = text.replace(old, new)
        config.write_text(text)
    env = _environment(tmp_path)

    server_log = tmp_path / "server.log"
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/strongroom server\n" in readme  # the command started below
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "strongroom"), "server", "--port", str(free_port())],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "serving" not in server_log.read_text():
            assert server.poll() is None, server_log.read_text()
            assert time.monotonic() < deadline, server_log.read_text()
            time.sleep(0.1)
        first_start = server_log.read_text()
        assert 'Clients: in another shell, eval "$(strongroom env)"' in first_start

        script = tour_script(readme, replace)
        shell = subprocess.Popen(
            ["bash", "-c", script + "kill $(jobs -p) 2>/dev/null; wait 2>/dev/null || true\n"],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = shell.communicate(timeout=480)
        finally:
            _stop(shell)
        text = out.decode("utf-8", "replace")
        assert shell.returncode == 0 and "README-DONE" in text, f"{script}\n----\n{text}"
    finally:
        _stop(server)

    # the tour
    assert "hello" in text  # aws kms decrypt of msg.enc
    assert '"Account":' in text or "Account" in text  # sts get-caller-identity
    # at rest
    assert (work / "dump.sr").exists() and (work / "objects").is_dir()
    assert "u-42's cv is gone for good" in text
    assert "destroyed" in text
    # in transit: through both sidecar ends to the service, and the mesh-certified server
    assert "<!DOCTYPE HTML>" in text
    assert '{"status":"ok"}' in text
    assert "Traceback" not in text
    # the second server left the first one's credentials alone
    assert "already serves this data directory" in text
