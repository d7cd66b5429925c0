"""The real py-spiffe and spiffe-tls clients against the agent, over its unix socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from strongroom.mesh.agent.serve import AgentThread
from strongroom.mesh.identity.svid import spiffe_id_of

if TYPE_CHECKING:
    from tests.mesh.conftest import Mesh, Probe

PROBE = Path(__file__).with_name("spiffe_probe.py")
WEB = "spiffe://example.org/web"


def _register_me(mesh: Mesh, spiffe_id: str = WEB) -> None:
    mesh.registry.register(spiffe_id, [f"unix:uid:{os.getuid()}"])


def test_x509_svid_and_bundle_fetched_by_py_spiffe(mesh: Mesh, probe: Probe) -> None:
    _register_me(mesh)
    code, [out] = probe("x509")
    assert code == 0, out
    assert out["spiffe_id"] == WEB and out["ids"] == [WEB]
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in out["chain"]]
    leaf = chain[0]
    assert str(spiffe_id_of(leaf)) == WEB
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [WEB]
    ttl = leaf.not_valid_after_utc.timestamp() - mesh.clock.now()
    assert 3599 <= ttl <= 3601
    roots = [x509.load_pem_x509_certificate(p.encode()) for p in out["bundle"]]
    assert roots == mesh.ca.x509_authorities()
    assert out["context_bundle"] == out["bundle"]
    verifier = PolicyBuilder().store(Store(roots)).build_client_verifier()
    verified = verifier.verify(leaf, chain[1:])
    assert x509.UniformResourceIdentifier(WEB) in (verified.subjects or [])
    from cryptography.hazmat.primitives import serialization as key

    private = key.load_pem_private_key(out["key_pem"].encode(), None)
    private_public = cast(ec.EllipticCurvePublicKey, private.public_key())
    leaf_public = cast(ec.EllipticCurvePublicKey, leaf.public_key())
    assert private_public.public_numbers() == leaf_public.public_numbers()


def test_rotation_is_pushed_before_expiry(mesh: Mesh, agent: AgentThread) -> None:
    _register_me(mesh)
    env = dict(os.environ, SPIFFE_ENDPOINT_SOCKET=agent.endpoint)
    child = subprocess.Popen(
        [sys.executable, str(PROBE), "stream", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        first = json.loads(child.stdout.readline())
        assert "serial" in first, first
        deadline = time.monotonic() + 20
        while mesh.scheduler.sleepers == 0:  # the stream now waits for the half life
            assert time.monotonic() < deadline
            time.sleep(0.01)
        mesh.scheduler.advance(1800)  # past the half life of the 1-hour SVID
        second = json.loads(child.stdout.readline())
        assert "serial" in second, second
        assert second["serial"] != first["serial"]
        assert second["not_before"] - first["not_before"] >= 1799  # issued at the new time
        lifetime = first["not_after"] - first["not_before"]
        assert second["not_after"] - second["not_before"] == lifetime
        assert first["not_after"] > second["not_before"]  # pushed before the old one expired
        assert child.wait(20) == 0
    finally:
        with child:  # on the way out: close its pipes, wait for it
            child.kill()


def test_jwt_svid_fetched_and_validated(mesh: Mesh, probe: Probe) -> None:
    _register_me(mesh)
    code, [out] = probe("jwt", "https://api.example.org")
    assert code == 0, out
    assert out["spiffe_id"] == out["validated_by_agent"] == out["validated_locally"] == WEB
    assert out["audience"] == ["https://api.example.org"]
    assert 299 <= out["expiry"] - mesh.clock.now() <= 301
    code, [wrong] = probe("validate", out["token"], "https://other.example.org")
    assert code == 3 and "audience" in wrong["message"]


def test_calls_without_the_security_header_are_refused(mesh: Mesh, probe: Probe) -> None:
    _register_me(mesh)
    code, [codes] = probe("no-header")
    assert code == 0
    assert codes == {
        "FetchX509SVID": "INVALID_ARGUMENT",
        "FetchX509Bundles": "INVALID_ARGUMENT",
        "FetchJWTSVID": "INVALID_ARGUMENT",
        "FetchJWTBundles": "INVALID_ARGUMENT",
        "ValidateJWTSVID": "INVALID_ARGUMENT",
    }


@pytest.mark.skipif(os.getuid() != 0, reason="connecting as another uid needs root")
def test_a_workload_of_another_uid_gets_no_identity(mesh: Mesh, probe: Probe) -> None:
    _register_me(mesh)  # root's entry; the probe connects as nobody
    code, [out] = probe("x509", as_uid=65534)
    assert code == 3
    assert "PERMISSION_DENIED" in out["message"] or "no identity issued" in out["message"]
    mesh.registry.register("spiffe://example.org/nobody", ["unix:uid:65534"])
    code, [out] = probe("x509", as_uid=65534)
    assert code == 0, out
    assert out["spiffe_id"] == "spiffe://example.org/nobody"


def test_spiffe_tls_mutual_tls_with_the_issued_svids(mesh: Mesh, probe: Probe) -> None:
    _register_me(mesh)
    code, [out] = probe("tls", WEB)
    assert code == 0, out
    assert out == {"server_got": "ping", "client_got": "pong"}
    code, [refused] = probe("tls", "spiffe://example.org/someone-else")
    assert code == 3, refused
