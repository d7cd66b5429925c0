"""The official api.proto is kept unchanged and the committed stubs are what it generates."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import strongroom.k8s.proto
from strongroom.k8s.proto import api_pb2, api_pb2_grpc

PROTO_DIR = Path(strongroom.k8s.proto.__file__).parent
OFFICIAL_SHA256 = "707c98c686bfcfa9c068263bc40eb97b95a194fdf0aa2d8d7ddb60a147b8cd1c"
GENERATED = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def test_proto_is_the_official_file() -> None:
    data = (PROTO_DIR / "api.proto").read_bytes()
    assert hashlib.sha256(data).hexdigest() == OFFICIAL_SHA256
    assert b"Copyright 2022 The Kubernetes Authors." in data
    assert b"Apache License, Version 2.0" in data


def test_service_and_methods_are_as_kube_apiserver_calls_them() -> None:
    service = api_pb2.DESCRIPTOR.services_by_name["KeyManagementService"]
    assert service.full_name == "v2.KeyManagementService"
    assert [m.name for m in service.methods] == ["Status", "Decrypt", "Encrypt"]
    assert api_pb2.DESCRIPTOR.package == "v2"
    assert hasattr(api_pb2_grpc, "KeyManagementServiceStub")


def test_committed_stubs_are_what_the_documented_command_generates(tmp_path: Path) -> None:
    src = tmp_path / "src"
    target = src / "strongroom" / "k8s" / "proto"
    target.mkdir(parents=True)
    shutil.copy(PROTO_DIR / "api.proto", target / "api.proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "src",
            "--python_out=src",
            "--pyi_out=src",
            "--grpc_python_out=src",
            "src/strongroom/k8s/proto/api.proto",
        ],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    for name in GENERATED:
        assert (target / name).read_bytes() == (PROTO_DIR / name).read_bytes(), name
