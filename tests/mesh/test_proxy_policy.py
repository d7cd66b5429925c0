"""The sidecar policy file: what it accepts, and errors that point at the bad key and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import ValidationError
from strongroom.mesh.proxy.peer_check import PeerCert, read_peer
from strongroom.mesh.proxy.policy import load_policy, parse_policy
from strongroom.mesh.proxy.yaml_config import Address, parse_address
from strongroom.testing.mesh_certs import TestTrustDomain

GOOD = """\
trust_domain: example.org
svid:
  files: {cert: svid.pem, key: svid.key, bundle: bundle.pem, poll_seconds: 2}
revocation_file: revoked.txt
session_resumption: false
inbound:
  - name: api
    listen: 0.0.0.0:8443
    upstream: 127.0.0.1:8080
    allow: [spiffe://example.org/web, spiffe://example.org/batch]
  - name: closed
    listen: "[::1]:9443"
    upstream: 127.0.0.1:9090
outbound:
  - name: db
    listen: 127.0.0.1:15432
    peer: db.internal:8443
    peer_id: spiffe://example.org/db
    pool_size: 0
    pool_max_idle: 5
"""


def test_a_full_policy_parses(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text(GOOD)
    policy = load_policy(path)
    assert policy.trust_domain == "example.org"
    assert policy.svid.cert == tmp_path / "svid.pem"  # relative to the policy file
    assert policy.svid.poll_seconds == 2
    assert policy.revocation_file == tmp_path / "revoked.txt"
    assert policy.session_resumption is False
    api, closed = policy.inbound
    assert api.listen == Address("0.0.0.0", 8443)
    assert api.allow == {"spiffe://example.org/web", "spiffe://example.org/batch"}
    assert closed.listen == Address("::1", 9443)
    assert closed.allow == frozenset()  # deny by default
    (db,) = policy.outbound
    assert (db.peer, db.peer_id, db.pool_size, db.pool_max_idle) == (
        Address("db.internal", 8443),
        "spiffe://example.org/db",
        0,
        5.0,
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    allow: [spiffe://example.org/web,",
            "    alow: [spiffe://example.org/web,",
            "<p>:10: inbound[0]: unknown key 'alow'",
        ),
        (
            "spiffe://example.org/batch]",
            "spiffe://example.org/ba%20tch]",
            "<p>:10: inbound[0].allow[1]: a SPIFFE ID path segment",
        ),
        (
            "spiffe://example.org/batch]",
            "spiffe://evil.org/batch]",
            "<p>:10: inbound[0].allow[1]: spiffe://evil.org/batch is not in trust domain",
        ),
        (
            "    upstream: 127.0.0.1:8080",
            "    upstream: 127.0.0.1:80800",
            "<p>:9: inbound[0].upstream: not a host:port address: bad port '80800'",
        ),
        (
            "    peer_id: spiffe://example.org/db",
            "    peer_id: spiffe://example.org",
            "<p>:18: outbound[0].peer_id: a workload's SPIFFE ID has a path",
        ),
        (
            "    pool_size: 0",
            "    pool_size: many",
            "<p>:19: outbound[0].pool_size: expected an integer from 0 to 256",
        ),
        (
            "  - name: closed",
            "  - name: api",
            "<p>:11: inbound[1]: listener name 'api' is used twice",
        ),
        (
            "trust_domain: example.org",
            "trust_domain: Example.org",
            "<p>:1: trust_domain: a trust domain holds only lower-case",
        ),
        (
            "  files: {cert",
            "  workload_api: unix:///x.sock\n  files: {cert",
            "<p>:3: svid: give exactly one of 'workload_api' or 'files'",
        ),
        (
            "session_resumption: false",
            "session_resumption: maybe",
            "<p>:5: session_resumption: expected true or false",
        ),
        (
            "    listen: 127.0.0.1:15432",
            "    listen: [127.0.0.1:15432",
            "<p>:17: YAML syntax error",
        ),
    ],
)
def test_errors_point_at_the_line_and_key(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    with pytest.raises(ValidationError) as caught:
        parse_policy(GOOD.replace(old, new, 1), "<p>")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_missing_pieces() -> None:
    with pytest.raises(ValidationError, match=r"<p>:1: missing key 'svid'"):
        parse_policy("trust_domain: example.org\ninbound: []\n", "<p>")
    with pytest.raises(ValidationError, match="no listeners"):
        parse_policy("trust_domain: example.org\nsvid: {workload_api: unix:///s}\n", "<p>")
    with pytest.raises(ValidationError, match="the configuration is empty"):
        parse_policy("", "<p>")
    with pytest.raises(ValidationError, match="expected a mapping"):
        parse_policy("- a\n- b\n", "<p>")


@given(st.text(max_size=60))
def test_parse_address_only_raises_value_error(text: str) -> None:
    try:
        address = parse_address(text)
    except ValueError:
        return
    assert 1 <= address.port <= 65535
    assert parse_address(str(address)) == address


@given(st.binary(max_size=300))
def test_read_peer_never_raises_on_garbage(der: bytes) -> None:
    assert isinstance(read_peer(der), str)


def test_read_peer_of_real_svids() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    td = TestTrustDomain("example.org")
    leaf = x509.load_pem_x509_certificates(td.issue_svid("/web").chain_pem)[0]
    peer = read_peer(leaf.public_bytes(Encoding.DER))
    assert isinstance(peer, PeerCert)
    assert (peer.spiffe_id, peer.trust_domain, peer.serial) == (
        "spiffe://example.org/web",
        "example.org",
        leaf.serial_number,
    )
    root = td.root.public_bytes(Encoding.DER)
    assert read_peer(root) == "peer certificate is a CA certificate"
    server = x509.load_pem_x509_certificates(td.issue_server(["localhost"]).chain_pem)[0]
    assert (
        read_peer(server.public_bytes(Encoding.DER))
        == "peer certificate has 0 URI SANs, not exactly one"
    )
    odd = x509.load_pem_x509_certificates(td.issue_svid("", uris=["https://x"]).chain_pem)[0]
    assert str(read_peer(odd.public_bytes(Encoding.DER))).startswith(
        "peer URI SAN is not a SPIFFE ID"
    )
