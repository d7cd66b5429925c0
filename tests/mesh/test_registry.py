"""Registration entries and attestation by the kernel's peer credentials."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import AlreadyExistsError, NotFoundError, ValidationError
from strongroom.mesh.agent.attest import PeerCredentials, peer_credentials, workload_selectors
from strongroom.mesh.identity.registry import RegistrationEntry, Selector
from strongroom.mesh.identity.spiffe_id import TrustDomain

if TYPE_CHECKING:
    from tests.mesh.conftest import Mesh


def _attested(*texts: str) -> frozenset[Selector]:
    return frozenset(Selector.parse(t) for t in texts)


def test_an_entry_matches_only_workloads_with_all_its_selectors(mesh: Mesh) -> None:
    web = mesh.registry.register(
        "spiffe://example.org/web", ["unix:uid:1000", "unix:path:/usr/bin/web"]
    )
    mesh.registry.register("spiffe://example.org/any", ["unix:gid:50"])
    mesh.registry.register("spiffe://other.org/web", ["unix:uid:1000"])
    workload = _attested("unix:uid:1000", "unix:gid:50", "unix:path:/usr/bin/web")
    td = TrustDomain("example.org")
    assert [str(e.spiffe_id) for e in mesh.registry.match(workload, td)] == [
        "spiffe://example.org/any",
        "spiffe://example.org/web",
    ]
    other_binary = _attested("unix:uid:1000", "unix:gid:51", "unix:path:/usr/bin/sh")
    assert mesh.registry.match(other_binary, td) == []
    assert len(mesh.registry.match(other_binary)) == 1  # other.org, any trust domain
    with pytest.raises(AlreadyExistsError):
        mesh.registry.register(
            "spiffe://example.org/web", ["unix:path:/usr/bin/web", "unix:uid:1000"]
        )
    assert mesh.registry.unregister(web.entry_id) == web
    assert [str(e.spiffe_id) for e in mesh.registry.match(workload, td)] == [
        "spiffe://example.org/any"
    ]
    with pytest.raises(NotFoundError):
        mesh.registry.unregister(web.entry_id)


@pytest.mark.parametrize(
    ("spiffe_id", "selectors"),
    [
        ("spiffe://example.org/web", []),
        ("spiffe://example.org", ["unix:uid:1"]),
        ("spiffe://example.org/web", ["unix:uid:x"]),
        ("spiffe://example.org/web", ["unix:path:relative/bin"]),
        ("spiffe://example.org/web", ["k8s:ns:default"]),
        ("spiffe://example.org/web", ["unix:pid:1"]),
        ("spiffe://example.org/web", ["uid:1"]),
        ("spiffe://example.org/web/", ["unix:uid:1"]),
    ],
)
def test_bad_registrations_are_refused(mesh: Mesh, spiffe_id: str, selectors: list[str]) -> None:
    with pytest.raises(ValidationError):
        mesh.registry.register(spiffe_id, selectors)
    assert mesh.registry.entries() == []


@given(st.sampled_from(["uid", "gid"]), st.integers(min_value=0, max_value=2**31))
def test_numeric_selectors_round_trip(key: str, number: int) -> None:
    selector = Selector.parse(f"unix:{key}:{number}")
    assert str(selector) == f"unix:{key}:{number}"


@given(st.text(max_size=40))
def test_selector_parser_accepts_or_refuses_cleanly(text: str) -> None:
    try:
        selector = Selector.parse(text)
    except ValidationError:
        return
    assert Selector.parse(str(selector)) == selector


def test_entries_survive_the_store(mesh: Mesh) -> None:
    entry = mesh.registry.register("spiffe://example.org/db", ["unix:user:postgres"])
    raw = entry.to_bytes()
    assert RegistrationEntry.from_bytes(raw) == entry
    assert mesh.registry.entries() == [entry]


def test_peer_credentials_come_from_the_kernel() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        creds = peer_credentials(left)
    assert creds == PeerCredentials(os.getpid(), os.getuid(), os.getgid())
    selectors = workload_selectors(creds)
    assert Selector("unix", "uid", str(os.getuid())) in selectors
    assert Selector("unix", "gid", str(os.getgid())) in selectors
    assert Selector("unix", "path", os.path.realpath(sys.executable)) in selectors


def test_tcp_peers_are_not_attested() -> None:
    from strongroom.errors import AccessDeniedError

    with socket.socket() as sock, pytest.raises(AccessDeniedError):
        peer_credentials(sock)


def test_an_unreadable_process_gives_no_path(tmp_path: Path) -> None:
    selectors = workload_selectors(PeerCredentials(999999999, 12345, 12345), proc=tmp_path)
    assert {s.key for s in selectors} <= {"uid", "gid", "user", "group"}
