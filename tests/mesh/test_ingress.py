"""``strongroom server --tls-from-mesh``: the HTTPS certificate is an SVID of the mesh CA."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from strongroom.errors import AccessDeniedError
from strongroom.mesh.identity.ingress import MESH_SERVER_TTL_S, server_credentials, server_spiffe_id
from strongroom.testing.server import ServerProcess
from strongroom.tls import SubjectNames, renewal_due

if TYPE_CHECKING:
    from tests.mesh.conftest import Mesh

SERVER_ID = "spiffe://example.org/strongroom/server"


def _chain(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def test_server_credentials_from_the_mesh_ca(mesh: Mesh) -> None:
    names = SubjectNames.build(["kms.example.org", SERVER_ID])
    assert names.spiffe_id == SERVER_ID
    now = mesh.clock.now()
    creds = mesh.store.write(lambda tx: server_credentials(tx, mesh.root, names, now))
    leaf, *rest = _chain(creds.chain_pem)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [SERVER_ID]
    assert "kms.example.org" in sans.get_values_for_type(x509.DNSName)
    assert creds.ca_pem == mesh.ca.trust_bundle_pem()
    verifier = (
        PolicyBuilder()
        .store(Store(mesh.ca.x509_authorities()))
        .build_server_verifier(x509.DNSName("kms.example.org"))
    )
    verifier.verify(leaf, rest)
    assert creds.not_after - creds.not_before == pytest.approx(MESH_SERVER_TTL_S + 10)
    again = mesh.store.write(lambda tx: server_credentials(tx, mesh.root, names, now + 60))
    assert again.chain_pem == creds.chain_pem  # stored and reused, not reissued
    assert not renewal_due(creds, now + MESH_SERVER_TTL_S / 2, 90)
    assert renewal_due(creds, now + MESH_SERVER_TTL_S * 0.7, 90)
    later = now + MESH_SERVER_TTL_S * 0.7
    renewed = mesh.store.write(lambda tx: server_credentials(tx, mesh.root, names, later))
    assert renewed.chain_pem != creds.chain_pem
    mesh.ca.revoke(SERVER_ID)
    other = SubjectNames.build(["other.example.org", SERVER_ID])
    with pytest.raises(AccessDeniedError):
        mesh.store.write(lambda tx: server_credentials(tx, mesh.root, other, later))


def test_one_spiffe_id_per_server_certificate() -> None:
    from strongroom.errors import ValidationError

    with pytest.raises(ValidationError):
        SubjectNames.build([SERVER_ID, "spiffe://example.org/other"])
    assert server_spiffe_id("example.org") == SERVER_ID


class MeshServer(ServerProcess):
    @property
    def ca_bundle(self) -> Path | None:
        return self.data_dir / "mesh-example.org.pem"


def test_strongroom_server_serves_https_with_a_mesh_certificate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = MeshServer(data, "--tls-from-mesh", "--trust-domain", "example.org")
    try:
        server.start()
        status, _ = server.get("/healthz")  # verified against the mesh bundle, by IP SAN
        assert status == 200
        context = ssl.create_default_context(cafile=str(data / "mesh-example.org.pem"))
        import socket

        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        leaf = x509.load_der_x509_certificate(der)
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [SERVER_ID]
        instance_ca = x509.load_pem_x509_certificate((data / "ca.pem").read_bytes())
        with pytest.raises(VerificationError):  # not the instance CA's certificate
            PolicyBuilder().store(Store([instance_ca])).build_server_verifier(
                x509.DNSName("localhost")
            ).verify(leaf, [])
        admin = json.loads((data / "admin-credentials.json").read_text())
        assert admin["CaBundle"] == str(data / "mesh-example.org.pem")
        assert "mesh-example.org.pem" in server.output()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-from-mesh"], "--tls-from-mesh needs --trust-domain"),
        (["--trust-domain", "example.org"], "--trust-domain goes with --tls-from-mesh"),
        (["--tls-san", SERVER_ID], "is not a --tls-san"),
        (["--tls-from-mesh", "--trust-domain", "Bad_Domain"], "trust domain"),
        (["--tls-from-mesh", "--trust-domain", "example.org", "--insecure-http"], "drop"),
    ],
)
def test_bad_mesh_flags_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "strongroom.cli", "server", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert message in done.stderr
