"""The SPIFFE Workload API proto is the official file; the stubs are what it generates."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import strongroom.mesh.proto
from strongroom.mesh.proto import workload_pb2

PROTO_DIR = Path(strongroom.mesh.proto.__file__).parent
OFFICIAL_SHA256 = "ad52f30cdf0ad674d05514dd8e2e47ae3adcd65ffb9643211aaa0df3e2322982"
GENERATED = ("workload_pb2.py", "workload_pb2.pyi", "workload_grpc.py")
DESCRIPTOR_HEX = """
import sys
from google.protobuf import descriptor_pb2
module = __import__(sys.argv[1], fromlist=["DESCRIPTOR"])
proto = descriptor_pb2.FileDescriptorProto()
module.DESCRIPTOR.CopyToProto(proto)
proto.name = "workload.proto"
sys.stdout.write(proto.SerializeToString(deterministic=True).hex())
"""


def test_proto_is_the_official_file() -> None:
    data = (PROTO_DIR / "workload.proto").read_bytes()
    assert hashlib.sha256(data).hexdigest() == OFFICIAL_SHA256


def test_service_and_methods_are_as_spiffe_clients_call_them() -> None:
    service = workload_pb2.DESCRIPTOR.services_by_name["SpiffeWorkloadAPI"]
    assert service.full_name == "SpiffeWorkloadAPI"
    assert [m.name for m in service.methods] == [
        "FetchX509SVID",
        "FetchX509Bundles",
        "FetchJWTSVID",
        "FetchJWTBundles",
        "ValidateJWTSVID",
    ]
    assert workload_pb2.DESCRIPTOR.package == ""


def test_the_same_messages_as_py_spiffe() -> None:
    """py-spiffe's compiled copy and ours describe the same wire format, field for field."""

    def descriptor(module: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", DESCRIPTOR_HEX, module],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout

    ours = descriptor("strongroom.mesh.proto.workload_pb2")
    assert len(ours) > 1000
    assert ours == descriptor("spiffe._proto.workload_pb2")


def test_committed_stubs_are_what_the_documented_command_generates(tmp_path: Path) -> None:
    src = tmp_path / "src"
    target = src / "strongroom" / "mesh" / "proto"
    target.mkdir(parents=True)
    shutil.copy(PROTO_DIR / "workload.proto", target / "workload.proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "src",
            "--python_out=src",
            "--pyi_out=src",
            "--grpclib_python_out=src",
            "src/strongroom/mesh/proto/workload.proto",
        ],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    for name in GENERATED:
        assert (target / name).read_bytes() == (PROTO_DIR / name).read_bytes(), name
