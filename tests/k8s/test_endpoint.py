"""The plugin against a key service over HTTPS: a real ``strongroom server``, and failures.

The plugin process gets its credentials and its CA bundle from the AWS chain (environment
variables here: ``AWS_CA_BUNDLE``, as for the AWS CLI); ``--ca-bundle`` is checked in process.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from strongroom import errors
from strongroom.k8s import AwsKmsBackend, KeyVersion, RetryPolicy
from strongroom.k8s.proto import api_pb2
from strongroom.testing.server import client_for, free_port, run_server

if TYPE_CHECKING:
    from tests.k8s.conftest import Launcher, PluginProcess, Running


def details(error: grpc.RpcError) -> str:
    """The status details of ``error`` (grpc types them optional; these calls set them)."""
    text = error.details()
    assert text is not None
    return text


def sample(running: Running, name: str, **labels: str) -> float | None:
    return running.metrics.registry.get_sample_value(name, labels)


def _aws_env(tmp_path: Path, credentials: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_DEFAULT_REGION": credentials.get("Region") or "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }


def test_plugin_over_a_real_strongroom_server(
    tmp_path: Path, plugin_process: Callable[..., PluginProcess]
) -> None:
    with run_server(tmp_path / "server") as info:
        kms = client_for(info)
        arn = kms.create_key()["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName="alias/k8s-secrets", TargetKeyId=arn)
        proc = plugin_process(
            "--key",
            "alias/k8s-secrets",
            "--endpoint",
            info.endpoint_url,
            "--health-ttl",
            "0",
            "--timeout",
            "5",
            env={**_aws_env(tmp_path, info.credentials), "AWS_CA_BUNDLE": str(info.ca_bundle)},
        )
        stub = proc.stub
        status = stub.Status(api_pb2.StatusRequest(), timeout=10)
        assert (status.version, status.healthz, status.key_id) == ("v2", "ok", f"{arn}#v1")
        seed = os.urandom(32)
        first = stub.Encrypt(api_pb2.EncryptRequest(plaintext=seed, uid="e1"), timeout=10)
        assert first.key_id == f"{arn}#v1" and 0 < len(first.ciphertext) <= 1024

        kms.rotate_key_on_demand(KeyId=arn)
        assert stub.Status(api_pb2.StatusRequest(), timeout=10).key_id == f"{arn}#v2"
        second = stub.Encrypt(api_pb2.EncryptRequest(plaintext=seed, uid="e2"), timeout=10)
        assert second.key_id == f"{arn}#v2"
        for sealed in (first, second):
            request = api_pb2.DecryptRequest(
                ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations=sealed.annotations
            )
            assert stub.Decrypt(request, timeout=10).plaintext == seed

        kms.disable_key(KeyId=arn)
        assert "DisabledException" in stub.Status(api_pb2.StatusRequest(), timeout=10).healthz
        with pytest.raises(grpc.RpcError) as info_error:
            stub.Encrypt(api_pb2.EncryptRequest(plaintext=seed), timeout=10)
        assert info_error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        kms.enable_key(KeyId=arn)
        assert stub.Status(api_pb2.StatusRequest(), timeout=10).healthz == "ok"
        assert proc.stop() == 0
    assert not proc.socket_path.exists()
    assert info.credentials["SecretAccessKey"] not in proc.output()


def test_ca_bundle_option_and_unverified_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_server(tmp_path / "server") as info:
        arn = client_for(info).create_key()["KeyMetadata"]["Arn"]
        for name, value in _aws_env(tmp_path, info.credentials).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
        trusted = AwsKmsBackend.connect(info.endpoint_url, ca_bundle=info.ca_bundle, timeout=5)
        assert trusted.key_version(arn) == KeyVersion(arn, 1)
        trusted.close()
        unverified = AwsKmsBackend.connect(info.endpoint_url, timeout=5)  # system CAs only
        with pytest.raises(errors.DependencyTimeoutError, match="SSLError"):
            unverified.key_version(arn)
        unverified.close()


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in _aws_env(
        tmp_path, {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "secret-example"}
    ).items():
        monkeypatch.setenv(name, value)


def test_unreachable_key_service_is_unhealthy_and_unavailable(
    launch: Launcher, fake_credentials: None
) -> None:
    backend = AwsKmsBackend.connect(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    running = launch(backend=backend, retry=RetryPolicy(attempts=3, base_delay=0.0))
    status = running.stub.Status(api_pb2.StatusRequest(), timeout=10)
    assert status.healthz.startswith("key service: DependencyTimeoutException")
    assert status.key_id == ""  # never reached: no key id known yet
    with pytest.raises(grpc.RpcError) as info:
        running.stub.Encrypt(api_pb2.EncryptRequest(plaintext=b"s" * 32), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    retries = sample(running, "strongroom_k8s_plugin_backend_retries_total", operation="KeyVersion")
    assert retries == 4  # two retries for Status, two for Encrypt


def test_a_silent_key_service_times_out(launch: Launcher, fake_credentials: None) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts connections, never answers
    try:
        port = listener.getsockname()[1]
        backend = AwsKmsBackend.connect(f"http://127.0.0.1:{port}", timeout=0.3)
        running = launch(backend=backend, retry=RetryPolicy(attempts=2, base_delay=0.0))
        with pytest.raises(grpc.RpcError) as info:
            running.stub.Encrypt(api_pb2.EncryptRequest(plaintext=b"s" * 32), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "did not answer within 0.3 s" in details(info.value)
        assert (
            sample(running, "strongroom_k8s_plugin_backend_retries_total", operation="KeyVersion")
            == 1
        )
    finally:
        listener.close()


def test_grpc_deadline_bounds_the_retries(launch: Launcher, fake_credentials: None) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        port = listener.getsockname()[1]
        backend = AwsKmsBackend.connect(f"http://127.0.0.1:{port}", timeout=0.4)
        running = launch(
            backend=backend, retry=RetryPolicy(attempts=10, base_delay=1.0, max_delay=1.0)
        )
        with pytest.raises(grpc.RpcError) as info:
            running.stub.Encrypt(api_pb2.EncryptRequest(plaintext=b"s" * 32), timeout=0.7)
        assert info.value.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        # one attempt (0.4 s) and a pause of at least 0.5 s would pass the 0.7 s deadline
        retries = "strongroom_k8s_plugin_backend_retries_total"
        assert sample(running, retries, operation="KeyVersion") is None  # never retried
    finally:
        listener.close()
