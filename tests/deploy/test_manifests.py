"""The deployment files: Kubernetes manifests valid against the Kubernetes schemas (offline,
``kubernetes-validate``), naming real ``strongroom`` commands and flags, the image the
Containerfile builds, and the example mesh configurations loading (issue 18)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from strongroom.cli.main import COMMANDS, load_module_commands
from strongroom.mesh.proxy.policy import load_policy
from strongroom.mesh.proxy.policy_egress import load_egress_config

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").rglob("*.yaml"))
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
"""KMS v2 is stable from 1.29; the newest schemas the package carries."""


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if doc:
                found.append((f"{path.relative_to(ROOT)}:{doc['kind']}", doc))
    return found


DOCUMENTS = _documents()


def test_the_deployment_has_every_part() -> None:
    kinds = {name.split(":")[1] for name, _ in DOCUMENTS}
    assert {"Namespace", "StatefulSet", "Service", "DaemonSet", "Pod"} <= kinds
    assert "EncryptionConfiguration" in kinds
    names = {doc["metadata"]["name"] for _, doc in DOCUMENTS if "metadata" in doc}
    assert {"strongroom", "postgres", "strongroom-mesh-agent", "strongroom-kms-plugin"} <= names


API_OBJECTS = [(n, d) for n, d in DOCUMENTS if d["kind"] != "EncryptionConfiguration"]
"""Everything but kube-apiserver's own configuration file (checked by the next test)."""


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("name", "doc"), API_OBJECTS, ids=[n for n, _ in API_OBJECTS])
def test_manifest_is_valid_kubernetes(name: str, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_a_broken_manifest() -> None:
    (_, pod) = next((n, d) for n, d in API_OBJECTS if d["kind"] == "Pod")
    broken = {**pod, "spec": {**pod["spec"], "hostNetwrk": True}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_encryption_configuration_uses_the_plugin_socket() -> None:
    """kubernetes-validate has no schema for apiserver.config.k8s.io: check it by hand,
    against the v1 EncryptionConfiguration type (k8s.io/apiserver/pkg/apis/apiserver/v1)."""
    (config,) = [doc for _, doc in DOCUMENTS if doc["kind"] == "EncryptionConfiguration"]
    assert config["apiVersion"] == "apiserver.config.k8s.io/v1"
    assert set(config) == {"apiVersion", "kind", "resources"}
    (entry,) = config["resources"]
    assert set(entry) == {"resources", "providers"} and entry["resources"] == ["secrets"]
    first, *rest = entry["providers"]
    assert set(first) == {"kms"}
    kms = first["kms"]
    assert set(kms) <= {"apiVersion", "name", "endpoint", "timeout", "cachesize"}
    assert kms["apiVersion"] == "v2" and re.fullmatch(r"[a-z0-9-]+", kms["name"])
    assert re.fullmatch(r"\d+(ms|s|m)", kms["timeout"])
    (plugin,) = [doc for _, doc in DOCUMENTS if doc["kind"] == "Pod"]
    args = plugin["spec"]["containers"][0]["args"]
    assert f"--listen={kms['endpoint']}" in args
    assert rest == [{"identity": {}}]


def _containers() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, doc in DOCUMENTS:
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec", spec)
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            found.append((f"{name}/{container['name']}", container))
    return found


def test_images_are_the_one_the_containerfile_builds() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    ours = [c for _, c in _containers() if "postgres" not in c["image"]]
    assert ours and all(c["image"] == f"registry.example.com/strongroom:{version}" for c in ours)
    containerfile = (ROOT / "Containerfile").read_text()
    assert 'ENTRYPOINT ["strongroom"]' in containerfile


def _check_command_line(argv: list[str]) -> None:
    """``argv`` (after ``strongroom``) names a command and only flags it has."""
    words = [a for a in argv if not a.startswith("-")]
    flags = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    module, _ = COMMANDS[words[0]]
    command: Any = load_module_commands(module)[words[0]]
    for word in words[1:]:
        if not hasattr(command, "commands") or word not in command.commands:
            break
        command = command.commands[word]
    known = {opt for param in command.params for opt in param.opts}
    assert set(flags) <= known, (argv, sorted(set(flags) - known))


@pytest.mark.parametrize(("name", "container"), _containers(), ids=[n for n, _ in _containers()])
def test_containers_run_real_strongroom_commands(name: str, container: dict[str, Any]) -> None:
    if "postgres" in container["image"]:
        return
    if container.get("args"):  # the image's ENTRYPOINT is strongroom
        _check_command_line(container["args"])
    for probe in ("readinessProbe", "livenessProbe"):
        command = container.get(probe, {}).get("exec", {}).get("command")
        if command:
            assert command[0] == "strongroom"
            _check_command_line(command[1:])


@pytest.mark.parametrize("path", sorted((ROOT / "examples" / "mesh").glob("*.yaml")))
def test_example_mesh_configurations_load(path: Path) -> None:
    if path.name.startswith("egress"):
        config = load_egress_config(path)
        assert config.allowed("pypi.org", 443) and not config.allowed("pypi.org", 80)
    else:
        policy = load_policy(path)
        assert policy.inbound and policy.outbound
