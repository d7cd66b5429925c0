"""A KMS v2 plugin over a real key service, served on a real unix socket, and its client.

The client is the stub generated from the official ``api.proto``
(``strongroom.k8s.proto.api_pb2_grpc.KeyManagementServiceStub``), dialled at
``unix:///tmp/k8s.../kms.sock`` (a short directory: socket paths are capped at 107 bytes).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from strongroom.k8s import (
    InProcessBackend,
    KeyBackend,
    KmsPlugin,
    KmsServicer,
    PluginMetrics,
    PluginServer,
    RetryPolicy,
    plugin_caller,
)
from strongroom.k8s.proto import api_pb2_grpc
from strongroom.kms import Caller, KeyService

ALIAS = "alias/k8s-secrets"


@pytest.fixture
def key_arn(service: KeyService, alice: Caller) -> str:
    """Alice's symmetric key, reachable as ``alias/k8s-secrets``."""
    arn = str(service.call(alice, "CreateKey", {})["KeyMetadata"]["Arn"])
    service.call(alice, "CreateAlias", {"AliasName": ALIAS, "TargetKeyId": arn})
    return arn


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="k8s", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class FakeClock:
    """Monotonic seconds that move only when told (health cache tests)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@dataclass
class Running:
    """A plugin served on a socket, with its client stub and metrics."""

    plugin: KmsPlugin
    server: PluginServer
    stub: Any
    channel: grpc.Channel
    metrics: PluginMetrics


Launcher = Callable[..., Running]


@pytest.fixture
def launch(
    service: KeyService, alice: Caller, key_arn: str, socket_dir: Path
) -> Iterator[Launcher]:
    """``launch(health_ttl=0, clock=..., backend=..., key=ALIAS)``: serve a plugin, dial it."""
    started: list[Running] = []

    def run(
        *,
        health_ttl: float = 0.0,
        clock: Callable[[], float] | None = None,
        backend: KeyBackend | None = None,
        key: str = ALIAS,
        retry: RetryPolicy | None = None,
        name: str = "kms.sock",
    ) -> Running:
        metrics = PluginMetrics(CollectorRegistry())
        extra: dict[str, Any] = {} if clock is None else {"clock": clock}
        plugin = KmsPlugin(
            backend or InProcessBackend(service, plugin_caller(service, "alice")),
            key,
            health_ttl=health_ttl,
            retry=retry or RetryPolicy(attempts=2, base_delay=0.0),
            sleep=lambda _: None,
            metrics=metrics,
            **extra,
        )
        server = PluginServer(KmsServicer(plugin, metrics, **extra), socket_dir / name, workers=16)
        server.start()
        channel = grpc.insecure_channel(server.target)
        stub = api_pb2_grpc.KeyManagementServiceStub(channel)  # type: ignore[no-untyped-call]
        running = Running(plugin, server, stub, channel, metrics)
        started.append(running)
        return running

    yield run
    for running in started:
        running.channel.close()
        running.server.stop(grace=1.0)


class PluginProcess:
    """``strongroom k8s-plugin`` as a subprocess, dialled over its socket."""

    def __init__(self, args: list[str], socket_path: Path, env: dict[str, str] | None) -> None:
        self.socket_path = socket_path
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        environ = dict(os.environ)
        environ.pop("STRONGROOM_DATA_DIR", None)
        environ.update(env or {})
        environ["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "strongroom.cli", "k8s-plugin", *args],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env=environ,
        )
        self.channel = grpc.insecure_channel(f"unix://{socket_path}")
        self.stub = api_pb2_grpc.KeyManagementServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Block until the socket accepts gRPC calls; fail if the process exits first."""
        future = grpc.channel_ready_future(self.channel)
        try:
            future.result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise AssertionError(f"plugin did not start:\n{self.output()}") from None
        assert self.process.poll() is None, self.output()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> int:
        """SIGTERM and wait; return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def close(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def plugin_process(socket_dir: Path) -> Iterator[Callable[..., PluginProcess]]:
    """``plugin_process(*args, env=...)``: run ``strongroom k8s-plugin --listen ... *args``."""
    started: list[PluginProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> PluginProcess:
        path = socket_dir / f"p{len(started)}.sock"
        proc = PluginProcess(["--listen", f"unix://{path}", *args], path, env)
        started.append(proc)
        proc.wait_serving()
        return proc

    yield start
    for proc in started:
        proc.close()
