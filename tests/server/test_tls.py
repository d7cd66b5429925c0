"""The instance CA and server certificates over a real SQLite store and local root key."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import RootOfTrustError
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.tls import (
    SubjectNames,
    load_or_create_ca,
    read_ca_certificate,
    server_credentials,
    server_ssl_context,
)

NOW = 1_800_000_000.0
DAY = 86400.0


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[SqliteStore, LocalRootOfTrust]]:
    store = SqliteStore(tmp_path / "store.db")
    root = LocalRootOfTrust.create(tmp_path / "master.key")
    yield store, root
    store.close()


def test_ca_is_p256_root_created_once_and_key_only_wrapped(
    parts: tuple[SqliteStore, LocalRootOfTrust],
) -> None:
    store, root = parts
    first = store.write(lambda tx: load_or_create_ca(tx, root, NOW))
    second = store.write(lambda tx: load_or_create_ca(tx, root, NOW + DAY))
    assert first.pem == second.pem
    cert = first.certificate
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cast(ec.EllipticCurvePublicKey, cert.public_key()).curve.name == "secp256r1"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 1
    raw = store.read(lambda tx: tx.get("_global", "ca", "root"))
    assert raw is not None and b"PRIVATE KEY" not in raw
    assert store.read(read_ca_certificate) == cert
    assert "PrivateKey" not in repr(first)


def test_ca_key_does_not_open_under_another_root(
    parts: tuple[SqliteStore, LocalRootOfTrust], tmp_path: Path
) -> None:
    store, root = parts
    store.write(lambda tx: load_or_create_ca(tx, root, NOW))
    other = LocalRootOfTrust.create(tmp_path / "other.key")
    with pytest.raises(RootOfTrustError):
        store.write(lambda tx: load_or_create_ca(tx, other, NOW))


def test_server_certificate_sans_usage_and_chain(
    parts: tuple[SqliteStore, LocalRootOfTrust],
) -> None:
    store, root = parts
    names = SubjectNames.build(["kms.example.org", "10.1.2.3", "0.0.0.0"])
    creds = store.write(lambda tx: server_credentials(tx, root, names, NOW))
    leaf = x509.load_pem_x509_certificate(creds.chain_pem)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(sans.get_values_for_type(x509.DNSName))
    ips = {str(a) for a in sans.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "kms.example.org", socket.gethostname().lower()} <= dns
    assert ips == {"127.0.0.1", "::1", "10.1.2.3"}
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ca = x509.load_pem_x509_certificate(creds.ca_pem)
    leaf.verify_directly_issued_by(ca)
    assert creds.chain_pem.endswith(creds.ca_pem)
    assert "PRIVATE" not in repr(creds)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(creds)


def test_server_certificate_reused_then_renewed_near_expiry(
    parts: tuple[SqliteStore, LocalRootOfTrust],
) -> None:
    store, root = parts
    names = SubjectNames.build()
    first = store.write(lambda tx: server_credentials(tx, root, names, NOW))
    later = store.write(lambda tx: server_credentials(tx, root, names, NOW + 50 * DAY))
    assert later.chain_pem == first.chain_pem
    renewed = store.write(lambda tx: server_credentials(tx, root, names, NOW + 61 * DAY))
    assert renewed.chain_pem != first.chain_pem
    new_leaf = x509.load_pem_x509_certificate(renewed.chain_pem)
    assert new_leaf.not_valid_after_utc > datetime.datetime.fromtimestamp(
        NOW + 140 * DAY, datetime.UTC
    )
    other = SubjectNames.build(["other.example"])
    assert store.write(lambda tx: server_credentials(tx, root, other, NOW)).chain_pem not in (
        first.chain_pem,
        renewed.chain_pem,
    )


def test_context_serves_tls12_or_newer_verified_by_the_ca(
    parts: tuple[SqliteStore, LocalRootOfTrust], tmp_path: Path
) -> None:
    import time

    store, root = parts
    names = SubjectNames.build()
    creds = store.write(lambda tx: server_credentials(tx, root, names, time.time()))
    context = server_ssl_context(creds)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    (tmp_path / "ca.pem").write_bytes(creds.ca_pem)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=accept)
    thread.start()
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(2) == b"ok"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    thread.join()
    listener.close()
    assert ipaddress.ip_address("127.0.0.1") in [
        a
        for a in x509.load_pem_x509_certificate(creds.chain_pem)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.IPAddress)
    ]


@given(
    st.lists(
        st.one_of(
            st.ip_addresses().map(str),
            st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
        ),
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_subject_names_classify_and_digest_stably(names: list[str], rnd: Any) -> None:
    built = SubjectNames.build(names)
    for name in names:
        if not _is_ip(name):
            assert name.lower() in built.dns_names
        elif ipaddress.ip_address(name).is_unspecified:
            assert str(ipaddress.ip_address(name)) not in built.ip_addresses
        else:
            assert str(ipaddress.ip_address(name)) in built.ip_addresses
    shuffled = [*names, *names]
    rnd.shuffle(shuffled)
    again = SubjectNames.build([n.upper() if not _is_ip(n) else n for n in shuffled])
    assert again == built and again.digest == built.digest
    assert "localhost" in built.dns_names and {"127.0.0.1", "::1"} <= set(built.ip_addresses)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
