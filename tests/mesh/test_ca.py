"""The mesh CA: X.509-SVIDs per the standard, keys wrapped in the store, revocation, bundles."""

from __future__ import annotations

import base64
import datetime
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import AccessDeniedError, RootOfTrustError, ValidationError
from strongroom.mesh.identity.authority import INTERMEDIATE_VALIDITY_DAYS
from strongroom.mesh.identity.ca import DEFAULT_SVID_TTL_S, MeshCA
from strongroom.mesh.identity.svid import X509Svid, certificates_from_der, spiffe_id_of
from strongroom.ports import ManualClock
from strongroom.rootkey.local import LocalRootOfTrust
from strongroom.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from tests.mesh.conftest import Mesh

WEB = "spiffe://example.org/web"


def _verify(ca: MeshCA, chain: tuple[x509.Certificate, ...], server: bool = False) -> None:
    at = datetime.datetime.fromtimestamp(ca.clock.now(), datetime.UTC)
    builder = PolicyBuilder().store(Store(ca.x509_authorities())).time(at)
    if server:
        builder.build_server_verifier(x509.DNSName("web.example.org")).verify(
            chain[0], list(chain[1:])
        )
    else:
        builder.build_client_verifier().verify(chain[0], list(chain[1:]))


def test_x509_svid_follows_the_standard(mesh: Mesh) -> None:
    svid = mesh.ca.new_svid(WEB)
    leaf = svid.leaf
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [WEB]
    assert len(list(sans)) == 1
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.crl_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(cast(ec.EllipticCurvePublicKey, leaf.public_key()).curve, ec.SECP256R1)
    assert svid.not_after - mesh.clock.now() == pytest.approx(DEFAULT_SVID_TTL_S, abs=1)
    assert svid.renew_at == pytest.approx(mesh.clock.now() + DEFAULT_SVID_TTL_S / 2, abs=6)
    assert spiffe_id_of(leaf) == svid.spiffe_id
    assert "PRIVATE" not in repr(svid) and svid.private_key is not None
    _verify(mesh.ca, svid.cert_chain)
    # the CA certificates: P-256, CA, keyCertSign, the trust domain's ID as URI SAN
    inter = svid.cert_chain[1]
    root = mesh.ca.x509_authorities()[0]
    for cert, path_length in ((inter, 0), (root, 1)):
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert constraints.ca and constraints.path_length == path_length
        assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert uris.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://example.org"]
    assert inter.issuer == root.subject


def test_a_caller_keeps_its_own_key(mesh: Mesh) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    svid = mesh.ca.issue_svid(WEB, key.public_key(), ttl_s=120)
    assert svid.private_key is None
    leaf_key = cast(ec.EllipticCurvePublicKey, svid.leaf.public_key())
    assert leaf_key.public_numbers() == key.public_key().public_numbers()
    assert svid.not_after - mesh.clock.now() == pytest.approx(120, abs=1)
    with pytest.raises(ValidationError):
        svid.key_pem()


@pytest.mark.parametrize(
    "bad", ["spiffe://other.org/web", "spiffe://example.org", "https://example.org/web"]
)
def test_ids_outside_the_trust_domain_are_refused(mesh: Mesh, bad: str) -> None:
    with pytest.raises(ValidationError):
        mesh.ca.new_svid(bad)


def test_keys_are_wrapped_in_the_store_never_in_clear(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    root = LocalRootOfTrust(os.urandom(32))
    ca = MeshCA.create("example.org", store, root, ManualClock())
    authority = ca.authority()
    secret_ders = [
        k.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for k in (authority.intermediate_key, authority.jwt_key.private_key)
    ]
    store.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for der in secret_ders:
        scalar = der[-100:]
        assert scalar not in on_disk and base64.b64encode(der) not in on_disk
    # the same store and root give the same CA back; another root cannot unwrap it
    store = SqliteStore(tmp_path / "store.db")
    again = MeshCA.create("example.org", store, root, ManualClock())
    assert again.x509_authorities() == ca.x509_authorities()
    assert again.authority().jwt_key.kid == authority.jwt_key.kid
    with pytest.raises(RootOfTrustError):
        MeshCA.create("example.org", store, LocalRootOfTrust(os.urandom(32)), ManualClock())
    store.close()


def test_revocation_stops_issuance_and_is_seen_by_verifiers(mesh: Mesh) -> None:
    svid = mesh.ca.new_svid(WEB)
    verifier = MeshCA(mesh.ca.trust_domain, mesh.store, mesh.root, mesh.clock)  # another process
    assert not verifier.is_revoked(svid.leaf)
    assert mesh.ca.revoke(WEB) is True
    assert mesh.ca.revoke(WEB) is False
    assert mesh.ca.is_revoked(svid.leaf) and mesh.ca.is_revoked(WEB)
    assert not verifier.is_revoked(svid.leaf)  # its cached list is a second old at most
    mesh.clock.advance(1.0)
    assert verifier.is_revoked(svid.leaf)
    assert verifier.revoked() == frozenset({WEB})
    with pytest.raises(AccessDeniedError):
        mesh.ca.new_svid(WEB)
    with pytest.raises(AccessDeniedError):
        mesh.ca.new_jwt_svid(WEB, ["aud"])
    assert not mesh.ca.is_revoked("spiffe://example.org/other")
    assert mesh.ca.new_svid("spiffe://example.org/other")


def test_a_foreign_trust_domain_does_not_verify(mesh: Mesh, tmp_path: Path) -> None:
    other_store = SqliteStore(tmp_path / "other.db")
    other = MeshCA.create("example.org", other_store, mesh.root, mesh.clock)
    foreign = other.new_svid(WEB)  # same name, another CA
    with pytest.raises(VerificationError):
        _verify(mesh.ca, foreign.cert_chain)
    other_td = MeshCA.create("partner.org", mesh.store, mesh.root, mesh.clock)
    assert other_td.x509_authorities() != mesh.ca.x509_authorities()
    with pytest.raises(VerificationError):
        _verify(mesh.ca, other_td.new_svid("spiffe://partner.org/web").cert_chain)
    other_store.close()


def test_the_intermediate_is_renewed_under_the_same_root(mesh: Mesh) -> None:
    first = mesh.ca.new_svid(WEB).cert_chain[1]
    mesh.clock.advance(INTERMEDIATE_VALIDITY_DAYS * 86400 * 0.7)
    later = mesh.ca.new_svid(WEB)
    assert later.cert_chain[1] != first
    assert later.cert_chain[1].not_valid_after_utc > first.not_valid_after_utc
    _verify(mesh.ca, later.cert_chain)


def test_bundles_pem_and_spiffe(mesh: Mesh) -> None:
    pem = mesh.ca.trust_bundle_pem()
    assert x509.load_pem_x509_certificates(pem) == mesh.ca.x509_authorities()
    bundle = json.loads(json.dumps(mesh.ca.spiffe_bundle()))
    assert bundle["spiffe_sequence"] >= 1 and bundle["spiffe_refresh_hint"] > 0
    x509_keys = [k for k in bundle["keys"] if k["use"] == "x509-svid"]
    jwt_keys = [k for k in bundle["keys"] if k["use"] == "jwt-svid"]
    assert len(x509_keys) == len(jwt_keys) == 1
    der = base64.b64decode(x509_keys[0]["x5c"][0])
    assert x509.load_der_x509_certificate(der) == mesh.ca.x509_authorities()[0]
    for key in (*x509_keys, *jwt_keys):
        assert key["kty"] == "EC" and key["crv"] == "P-256" and {"x", "y"} <= key.keys()
    assert jwt_keys[0]["kid"] == mesh.ca.authority().jwt_key.kid
    assert mesh.ca.jwt_bundle() == {"keys": jwt_keys}


def test_jwt_svids(mesh: Mesh) -> None:
    token = mesh.ca.new_jwt_svid(WEB, ["https://a", "https://b"]).token
    checked = mesh.ca.validate_jwt_svid(token, "https://b")
    assert str(checked.spiffe_id) == WEB and checked.audience == ("https://a", "https://b")
    assert checked.expiry - mesh.clock.now() == pytest.approx(300, abs=1)
    with pytest.raises(ValidationError, match="audience"):
        mesh.ca.validate_jwt_svid(token, "https://c")
    header, _claims, signature = token.split(".")
    forged = (
        base64.urlsafe_b64encode(
            json.dumps(
                {"sub": "spiffe://example.org/admin", "aud": ["https://a"], "exp": 2**40}
            ).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(ValidationError, match="signature"):
        mesh.ca.validate_jwt_svid(f"{header}.{forged}.{signature}", "https://a")
    other = MeshCA.create("partner.org", mesh.store, mesh.root, mesh.clock)
    with pytest.raises(ValidationError):
        mesh.ca.validate_jwt_svid(
            other.new_jwt_svid("spiffe://partner.org/x", ["https://a"]).token, "https://a"
        )
    mesh.clock.advance(301)
    with pytest.raises(ValidationError, match="expired"):
        mesh.ca.validate_jwt_svid(token, "https://a")


@pytest.fixture(scope="module")
def jwt_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshCA]:
    store = SqliteStore(tmp_path_factory.mktemp("jwt") / "s.db")
    yield MeshCA.create("example.org", store, LocalRootOfTrust(os.urandom(32)), ManualClock())
    store.close()


JWS_SHAPED = st.from_regex(r"[\w-]{0,40}(\.[\w=-]{0,60}){2}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300) | JWS_SHAPED)
def test_any_garbage_token_is_a_validation_error(jwt_ca: MeshCA, text: str) -> None:
    with pytest.raises(ValidationError):
        jwt_ca.validate_jwt_svid(text, "aud")


def test_mutual_tls_with_two_svids(mesh: Mesh, tmp_path: Path) -> None:
    """Two workloads' SVIDs in Python's ssl: each side verifies the other by the bundle."""
    server_svid = mesh.ca.new_svid("spiffe://example.org/server", dns_names=["localhost"])
    client_svid = mesh.ca.new_svid("spiffe://example.org/client")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(mesh.ca.trust_bundle_pem())

    def context(side: int, svid: X509Svid) -> ssl.SSLContext:
        ctx = ssl.SSLContext(side)
        pem = tmp_path / f"{side}.pem"
        pem.write_bytes(svid.chain_pem() + svid.key_pem())
        ctx.load_cert_chain(str(pem))
        ctx.load_verify_locations(str(bundle))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    server_ctx = context(ssl.PROTOCOL_TLS_SERVER, server_svid)
    client_ctx = context(ssl.PROTOCOL_TLS_CLIENT, client_svid)
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            der = tls.getpeercert(binary_form=True)
            seen.append(der or b"")
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    with (
        socket.create_connection(listener.getsockname(), timeout=10) as raw,
        client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(2) == b"ok"
        server_der = tls.getpeercert(binary_form=True)
    thread.join(10)
    listener.close()
    assert server_der is not None
    assert spiffe_id_of(x509.load_der_x509_certificate(server_der)).path == "/server"
    assert spiffe_id_of(x509.load_der_x509_certificate(seen[0])).path == "/client"


def test_der_chains_split_back(mesh: Mesh) -> None:
    svid = mesh.ca.new_svid(WEB)
    assert certificates_from_der(svid.chain_der()) == list(svid.cert_chain)
    assert certificates_from_der(b"") == []
    with pytest.raises(ValidationError):
        certificates_from_der(svid.chain_der()[:-1])


@given(st.binary(max_size=200))
def test_der_garbage_is_a_validation_error(data: bytes) -> None:
    try:
        found = certificates_from_der(data)
    except ValidationError:
        return
    assert found == [] and data == b""
