"""``strongroom mesh register|entries|unregister|revoke|revoked|bundle --endpoint``.

An operator manages the mesh of a running ``strongroom server`` (``mesh_server``,
tests/mesh/conftest.py) with an access key created ``--mesh-admin``: the console script
with only that key in its environment, and the server's store read back with ``--data-dir``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import AccessDeniedError, NotFoundError
from strongroom.testing.server import ServerInfo, audit_events, aws_env, run_cli, signed_json_client

API = "spiffe://example.org/api"


def _endpoint(server: ServerInfo) -> tuple[str, ...]:
    return ("--endpoint", server.endpoint_url, "--ca-bundle", str(server.ca_bundle))


def test_a_mesh_admin_manages_the_mesh_of_a_server(
    mesh_server: ServerInfo,
    mesh_data_dir: Path,
    mesh_keys: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    env = aws_env(mesh_keys["operator"], tmp_path)
    remote = _endpoint(mesh_server)
    local = ("--data-dir", str(mesh_data_dir))

    def mesh(*args: str, expect: int = 0) -> str:
        return run_cli("mesh", *args, *remote, env=env, expect=expect)

    entry = json.loads(
        mesh("register", "--spiffe-id", API, "--selector", "unix:uid:1234", "--json")
    )
    assert entry["spiffe_id"] == API and entry["selectors"] == ["unix:uid:1234"]
    assert entry["created_at"] > 0
    # the entry is in the server's store, as the local command reads it
    stored = json.loads(run_cli("mesh", "entries", "--json", *local))
    assert entry in stored
    listed = json.loads(mesh("entries", "--json"))
    assert listed == stored
    assert json.loads(mesh("entries", "--trust-domain", "other.org", "--json")) == []
    assert API in mesh("entries")

    again = mesh("register", "--spiffe-id", API, "--selector", "unix:uid:1234", expect=1)
    assert "registered with these selectors already" in again
    bad = mesh("register", "--spiffe-id", API, "--selector", "unix:uid:abc", expect=1)
    assert "unix:uid is a number" in bad

    pem = mesh("bundle", "--trust-domain", "example.org")
    assert pem == run_cli("mesh", "bundle", "--trust-domain", "example.org", *local)
    assert x509.load_pem_x509_certificates(pem.encode())
    spiffe = json.loads(mesh("bundle", "--trust-domain", "example.org", "--format", "spiffe"))
    assert spiffe == json.loads(
        run_cli("mesh", "bundle", "--trust-domain", "example.org", "--format", "spiffe", *local)
    )
    assert {k["use"] for k in spiffe["keys"]} == {"x509-svid", "jwt-svid"}

    assert mesh("revoke", "--spiffe-id", API).strip() == f"revoked {API}"
    assert mesh("revoke", "--spiffe-id", API).strip() == f"{API} was revoked already"
    assert API in json.loads(mesh("revoked", "--trust-domain", "example.org", "--json"))
    assert API in run_cli("mesh", "revoked", "--trust-domain", "example.org", *local)

    gone = mesh("unregister", entry["entry_id"])
    assert gone.strip() == f"unregistered {entry['entry_id']} ({API})"
    assert entry["entry_id"] not in run_cli("mesh", "entries", "--json", *local)
    missing = mesh("unregister", entry["entry_id"], expect=1)
    assert "no registration entry" in missing

    changes = {"RegisterMeshEntry", "DeleteMeshEntry", "RevokeMeshId"}
    events = audit_events(mesh_data_dir, changes, wait_for=changes)
    operator = mesh_keys["operator"]["AccessKeyId"]
    done = {(e["operation"], e["result"]) for e in events if e["accessKeyId"] == operator}
    assert {
        ("RegisterMeshEntry", "Success"),
        ("RegisterMeshEntry", "AlreadyExistsException"),
        ("RegisterMeshEntry", "ValidationException"),
        ("RevokeMeshId", "Success"),
        ("DeleteMeshEntry", "Success"),
        ("DeleteMeshEntry", "NotFoundException"),
    } <= done
    registered = next(
        e for e in events if e["operation"] == "RegisterMeshEntry" and e["result"] == "Success"
    )
    assert registered["entryId"] == entry["entry_id"] and registered["spiffeId"] == API


def _public_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_agents_and_admins_keep_to_their_roles(
    mesh_server: ServerInfo, mesh_keys: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    clients = {
        name: signed_json_client(mesh_server, mesh_keys[name], "StrongroomMesh")
        for name in ("agent", "operator", "plain")
    }
    register = {"SpiffeId": "spiffe://example.org/x", "Selectors": ["unix:uid:7"]}
    try:
        for name in ("agent", "plain"):
            with pytest.raises(AccessDeniedError, match="--mesh-admin"):
                clients[name].call("RegisterMeshEntry", register)
            with pytest.raises(AccessDeniedError, match="--mesh-admin"):
                clients[name].call("RevokeMeshId", {"SpiffeId": "spiffe://example.org/x"})
        with pytest.raises(AccessDeniedError, match="--mesh-agent"):
            clients["operator"].call(
                "IssueX509Svid", {"SpiffeId": "spiffe://example.org/x", "PublicKey": _public_der()}
            )
        # an administrator may start a new trust domain's CA; until then an agent may not
        with pytest.raises(NotFoundError):
            clients["agent"].call("GetMeshBundle", {"TrustDomain": "fresh.example"})
        made = clients["operator"].call("GetMeshBundle", {"TrustDomain": "fresh.example"})
        again = clients["agent"].call("GetMeshBundle", {"TrustDomain": "fresh.example"})
        assert made["X509Authorities"] == again["X509Authorities"]
    finally:
        for client in clients.values():
            client.close()

    denied = run_cli(
        "mesh", "register", "--spiffe-id", API, "--selector", "unix:uid:1",
        *_endpoint(mesh_server), env=aws_env(mesh_keys["agent"], tmp_path), expect=1,
    )  # fmt: skip
    assert "--mesh-admin" in denied
    lonely = run_cli("mesh", "entries", "--region", "eu-west-1", expect=1)
    assert "go with --endpoint" in lonely
