"""``strongroom k8s-plugin`` as a process: in-process key service, signals, logs, metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from strongroom.cli.context import open_service
from strongroom.k8s.proto import api_pb2
from strongroom.testing.server import free_port
from strongroom.testing.service import tenant_caller

if TYPE_CHECKING:
    from tests.k8s.conftest import PluginProcess


def _strongroom(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STRONGROOM_DATA_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )


def _data_dir_with_key(data_dir: Path) -> str:
    """Initialise a data directory; create tenant 'cluster-a' and alias/k8s-secrets."""
    _strongroom("init", "--data-dir", str(data_dir))
    service = open_service(data_dir)
    try:
        caller = tenant_caller(service, "cluster-a")
        arn = str(service.call(caller, "CreateKey", {})["KeyMetadata"]["Arn"])
        service.call(caller, "CreateAlias", {"AliasName": "alias/k8s-secrets", "TargetKeyId": arn})
    finally:
        service.close()
    return arn


def test_plugin_command_serves_in_process_and_stops_cleanly(
    tmp_path: Path, plugin_process: Callable[..., PluginProcess]
) -> None:
    data_dir = tmp_path / "data"
    arn = _data_dir_with_key(data_dir)
    port = free_port()
    proc = plugin_process(
        "--key",
        "alias/k8s-secrets",
        "--data-dir",
        str(data_dir),
        "--tenant",
        "cluster-a",
        "--health-ttl",
        "0",
        "--metrics-port",
        str(port),
    )
    assert (proc.socket_path.stat().st_mode & 0o777) == 0o600
    status = proc.stub.Status(api_pb2.StatusRequest(), timeout=10)
    assert (status.version, status.healthz, status.key_id) == ("v2", "ok", f"{arn}#v1")
    seed = os.urandom(32)
    sealed = proc.stub.Encrypt(api_pb2.EncryptRequest(plaintext=seed, uid="cli-uid"), timeout=10)
    back = proc.stub.Decrypt(
        api_pb2.DecryptRequest(
            ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations=sealed.annotations
        ),
        timeout=10,
    )
    assert back.plaintext == seed
    try:
        proc.stub.Decrypt(api_pb2.DecryptRequest(ciphertext=b"junk" * 8), timeout=10)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        raise AssertionError("garbage decrypted")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'strongroom_k8s_plugin_requests_total{code="OK",method="Encrypt"} 1.0' in metrics
    assert "strongroom_k8s_plugin_healthy 1.0" in metrics
    assert proc.stop() == 0
    assert not proc.socket_path.exists()
    lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    assert any(line["message"] == "listening" for line in lines)
    encrypt = [line for line in lines if line.get("method") == "Encrypt"]
    assert encrypt and encrypt[0]["uid"] == "cli-uid" and encrypt[0]["code"] == "OK"
    assert lines[-1]["message"] == "stopped"
    assert seed.hex() not in proc.output()
    # the audit log was flushed at shutdown: the plugin's principal shows in it
    service = open_service(data_dir)
    try:
        events = service.store.read(lambda tx: tx.read_audit(0, 1000))
    finally:
        service.close()
    assert any(b"user/k8s-kms-plugin" in event.body for event in events)


def test_plugin_command_refuses_bad_setups(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from strongroom.cli.init import initialise
    from strongroom.cli.main import build_app

    data_dir = tmp_path / "data"
    initialise(data_dir)
    sock = f"unix://{tmp_path}/k.sock"
    base = ["k8s-plugin", "--key", "alias/x"]
    cases = [
        (["--listen", "tcp://127.0.0.1:1", "--data-dir", str(data_dir), "--tenant", "a"], "unix"),
        (["--listen", sock, "--data-dir", str(data_dir)], "--tenant"),
        (["--listen", sock, "--data-dir", str(data_dir), "--tenant", "nope"], "does not exist"),
        (["--listen", sock, "--endpoint", "https://x", "--tenant", "a"], "--tenant"),
        (["--listen", sock, "--endpoint", "https://x", "--aws"], "exclude"),
        (["--listen", sock, "--ca-bundle", "/etc/ca.pem", "--tenant", "a"], "--endpoint"),
        (["--listen", sock, "--log-level", "loud", "--tenant", "a"], "--log-level"),
    ]
    app, runner = build_app(), CliRunner()
    for args, message in cases:
        result = runner.invoke(app, [*base, *args], env={"STRONGROOM_DATA_DIR": ""})
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not Path(f"{tmp_path}/k.sock").exists()


def test_help_has_examples() -> None:
    from typer.testing import CliRunner

    from strongroom.cli.main import build_app

    result = CliRunner().invoke(build_app(), ["k8s-plugin", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "Examples" in text
    assert "strongroom k8s-plugin --listen unix://" in text and "--endpoint https://" in text
    assert "$AWS_CA_BUNDLE" in text
