"""Fixtures for the mesh tests: a key store, a trust domain's CA, an agent, py-spiffe probes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.mesh.agent.schedule import ManualScheduler
from strongroom.mesh.agent.serve import AgentThread
from strongroom.mesh.agent.workload_api import WorkloadApi
from strongroom.mesh.identity.ca import MeshCA
from strongroom.mesh.identity.registry import Registry
from strongroom.ports import ManualClock
from strongroom.rootkey.local import LocalRootOfTrust
from strongroom.store.sqlite import SqliteStore
from strongroom.testing.server import ServerInfo, run_cli, run_server

PROBE = Path(__file__).with_name("spiffe_probe.py")
TRUST_DOMAIN = "example.org"


@dataclass
class Mesh:
    store: SqliteStore
    root: LocalRootOfTrust
    clock: ManualClock
    scheduler: ManualScheduler
    ca: MeshCA
    registry: Registry


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    store = SqliteStore(tmp_path / "store.db")
    root = LocalRootOfTrust(os.urandom(32))
    clock = ManualClock(time.time())
    ca = MeshCA.create(TRUST_DOMAIN, store, root, clock)
    yield Mesh(store, root, clock, ManualScheduler(clock), ca, Registry(store, clock))
    store.close()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory any user can reach (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sr-mesh-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def agent(mesh: Mesh, socket_dir: Path) -> Iterator[AgentThread]:
    api = WorkloadApi(mesh.ca, mesh.registry, mesh.scheduler)
    with AgentThread(api, socket_dir / "agent.sock") as running:
        yield running


Probe = Callable[..., tuple[int, list[dict[str, Any]]]]


def probe_env(agent: AgentThread) -> dict[str, str]:
    env = dict(os.environ)
    env["SPIFFE_ENDPOINT_SOCKET"] = agent.endpoint
    return env


@pytest.fixture
def probe(agent: AgentThread) -> Probe:
    """``probe("x509")``: run the py-spiffe workload; return its exit code and JSON lines."""

    def run(*args: str, as_uid: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        prefix = [] if as_uid is None else ["--as-uid", str(as_uid)]
        done = subprocess.run(
            [sys.executable, str(PROBE), *prefix, *args],
            env=probe_env(agent),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert done.returncode in (0, 3), done.stderr
        return done.returncode, lines

    return run


SocketProbe = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def socket_probe() -> SocketProbe:
    """``socket_probe(path, "x509")``: the py-spiffe workload against the agent at ``path``.

    Returns the exit code (0, or 3 for a refusal) and the last JSON line it printed.
    """

    def run(socket_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
        env = dict(os.environ, SPIFFE_ENDPOINT_SOCKET=f"unix://{socket_path}")
        done = subprocess.run(
            [sys.executable, str(PROBE), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode in (0, 3), done.stderr
        return done.returncode, json.loads(done.stdout.splitlines()[-1])

    return run


# -- a Strongroom server with mesh keys (the --endpoint tests) --------------------------------


@pytest.fixture(scope="module")
def mesh_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory of this module's server."""
    return tmp_path_factory.mktemp("mesh-endpoint") / "data"


@pytest.fixture(scope="module")
def mesh_server(mesh_data_dir: Path) -> Iterator[ServerInfo]:
    """``strongroom server`` on loopback for this module's tests."""
    with run_server(mesh_data_dir) as info:
        yield info


def _access_key(data_dir: Path, user: str, *flags: str) -> dict[str, Any]:
    out = run_cli(
        "admin", "access-key", "create", "--tenant", "platform", "--user", user, *flags,
        "--json", "--data-dir", str(data_dir),
    )  # fmt: skip
    return json.loads(out[: out.rindex("}") + 1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def mesh_keys(mesh_server: ServerInfo, mesh_data_dir: Path) -> dict[str, dict[str, Any]]:
    """Access keys of tenant ``platform``: ``agent`` (--mesh-agent), ``operator``
    (--mesh-admin) and ``plain`` (a tenant administrator, no mesh role)."""
    run_cli("admin", "tenant", "create", "platform", "--data-dir", str(mesh_data_dir))
    # an agent may start a trust domain's CA only where workloads are registered
    run_cli(
        "mesh", "register", "--spiffe-id", "spiffe://example.org/nobody",
        "--selector", "unix:uid:65534", "--data-dir", str(mesh_data_dir),
    )  # fmt: skip
    return {
        "agent": _access_key(mesh_data_dir, "agent", "--mesh-agent"),
        "operator": _access_key(mesh_data_dir, "operator", "--mesh-admin"),
        "plain": _access_key(mesh_data_dir, "tenant-admin", "--admin"),
    }


@pytest.fixture
def unreachable_agent(socket_dir: Path) -> Iterator[AgentThread]:
    """An agent whose key service (``--endpoint``) is a closed port on loopback."""
    from botocore.credentials import Credentials

    from strongroom.data.signed_json import SignedJsonClient
    from strongroom.mesh.agent.remote import RemoteMeshAuthority
    from strongroom.mesh.agent.schedule import SystemScheduler
    from strongroom.ports import SystemClock
    from strongroom.testing.server import free_port

    nobody = SignedJsonClient(
        f"https://127.0.0.1:{free_port()}",
        "us-east-1",
        Credentials("AKIAEXAMPLEEXAMPLE00", "secret"),
        "StrongroomMesh",
        timeout=(2.0, 2.0),
    )
    remote = RemoteMeshAuthority(nobody, "example.org")
    api = WorkloadApi(remote, remote, SystemScheduler(SystemClock()))
    try:
        with AgentThread(api, socket_dir / "down.sock") as running:
            yield running
    finally:
        remote.close()
