"""A new user's first hour (issue 18): ``strongroom env``, the first start's hints, a
second server on the same data directory and a busy port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.testing.server import ServerProcess, console_script, run_cli


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("first") / "data"
    server = ServerProcess(data_dir).start()
    yield server
    server.close()


def _clean_env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))}
    environ.update(extra)
    return environ


def test_first_start_says_how_to_connect_and_stop(first: ServerProcess) -> None:
    out = first.output()
    assert f'Clients: in another shell, eval "$(strongroom env --data-dir {first.data_dir})"' in out
    assert "Stop: Ctrl-C here, or kill " in out


def test_env_exports_the_kms_endpoint_only(first: ServerProcess, tmp_path: Path) -> None:
    out = run_cli("env", "--data-dir", str(first.data_dir), env=_clean_env())
    creds = first.credentials()
    assert f"export AWS_ENDPOINT_URL_KMS={first.endpoint_url}" in out
    assert f"export AWS_ENDPOINT_URL_STS={first.endpoint_url}" in out
    assert "AWS_ENDPOINT_URL=" not in out  # that one would send S3 calls to the key service
    assert f"export AWS_ACCESS_KEY_ID={creds['AccessKeyId']}" in out
    assert f"export AWS_CA_BUNDLE={first.data_dir / 'ca.pem'}" in out
    assert "unset AWS_SESSION_TOKEN AWS_PROFILE" in out
    # eval'd by a shell, the variables reach an AWS client (boto3 here) and only for KMS
    script = (
        f'eval "$({console_script()} env)"\n'
        "python - <<'EOF'\n"
        "import boto3\n"
        "s = boto3.session.Session()\n"
        "print(s.client('kms').meta.endpoint_url, s.client('s3').meta.endpoint_url)\n"
        "print(len(s.client('kms').list_keys()['Keys']) >= 0)\n"
        "EOF\n"
    )
    shell = shutil.which("bash") or "/bin/sh"
    done = subprocess.run(
        [shell, "-c", script],
        capture_output=True,
        text=True,
        cwd=first.data_dir.parent,
        env=_clean_env(
            STRONGROOM_DATA_DIR=str(first.data_dir),
            AWS_CONFIG_FILE=str(tmp_path / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
            AWS_PROFILE="nobody",
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        ),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    kms_url, s3_url = done.stdout.splitlines()[0].split()
    assert kms_url == first.endpoint_url
    assert s3_url.startswith("https://s3.")
    assert done.stdout.splitlines()[1] == "True"


def test_env_without_credentials_says_what_to_do(tmp_path: Path) -> None:
    out = run_cli("env", "--data-dir", str(tmp_path / "nowhere"), env=_clean_env(), expect=1)
    assert f"No admin credentials in {tmp_path / 'nowhere'}" in out
    assert "Start 'strongroom server' there first" in out


def test_a_second_server_leaves_the_first_ones_credentials(first: ServerProcess) -> None:
    before = (first.data_dir / "admin-credentials.json").read_bytes()
    second = ServerProcess(first.data_dir).start()
    try:
        out = second.output()
        assert "already serves this data directory" in out
        assert f"pid {first.process.pid} on {first.endpoint_url}" in out  # type: ignore[union-attr]
        assert f"--endpoint {second.endpoint_url}" in out
    finally:
        assert second.stop() == 0
    assert (first.data_dir / "admin-credentials.json").read_bytes() == before
    assert json.loads(before)["Endpoint"] == first.endpoint_url


def test_a_busy_port_names_the_address_and_the_way_out(first: ServerProcess) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = run_cli(
            "server",
            "--data-dir",
            str(first.data_dir),
            "--port",
            str(port),
            env=_clean_env(),
            expect=1,
        )
    assert f"error: 127.0.0.1:{port} is already in use" in out
    assert "--port PORT (--port 0: any free port)" in out
    assert "strongroom env --data-dir" in out
