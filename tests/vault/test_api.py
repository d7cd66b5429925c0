"""The Vault-compatible API over HTTPS with a real HTTP client: tokens, KV v2, transit."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.testing.vault import VaultServerInfo, vault_server
from strongroom.vault import records


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServerInfo]:
    with vault_server(tmp_path_factory.mktemp("vault")) as info:
        info.front.kv_write(info.tenant, info.caller, info.mount, "1", {"data": "aa" * 32})
        yield info


def _call(
    vault: VaultServerInfo, path: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(vault.ca))
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(vault.url + path, data=data, method="POST" if data else "GET")
    request.add_header("X-Vault-Token", token if token is not None else vault.token)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_kv_versions_and_metadata(vault: VaultServerInfo) -> None:
    status, body = _call(vault, "/v1/mariadb/data/1")
    assert status == 200
    assert body["data"]["data"] == {"data": "aa" * 32}
    assert body["data"]["metadata"]["version"] == 1
    vault.front.kv_write(vault.tenant, vault.caller, vault.mount, "1", {"data": "bb" * 32})
    assert _call(vault, "/v1/mariadb/data/1")[1]["data"]["metadata"]["version"] == 2
    assert _call(vault, "/v1/mariadb/data/1?version=1")[1]["data"]["data"]["data"] == "aa" * 32
    meta = _call(vault, "/v1/mariadb/metadata/1")[1]["data"]
    assert meta["current_version"] == 2 and set(meta["versions"]) == {"1", "2"}
    assert "aa" * 32 not in json.dumps(meta)
    vault.front.kv_retire(vault.tenant, vault.mount, "1", 1)
    assert _call(vault, "/v1/mariadb/data/1?version=1")[0] == 404
    assert _call(vault, "/v1/mariadb/data/1")[0] == 200
    assert _call(vault, "/v1/sys/mounts/mariadb/tune")[1]["options"]["version"] == "2"


def test_tokens_are_checked_and_bound_to_their_mount(vault: VaultServerInfo) -> None:
    assert _call(vault, "/v1/mariadb/data/1", token="hvs.wrong")[0] == 403
    assert _call(vault, "/v1/mariadb/data/1", token="")[0] == 403
    assert _call(vault, "/v1/other/data/1")[0] == 403
    assert _call(vault, "/v1/mariadb/data/nothing-here")[0] == 404


def test_secrets_are_sealed_at_rest(vault: VaultServerInfo) -> None:
    raw = vault.front.store.read(lambda tx: tx.get(vault.tenant, records.KV_KIND, "mariadb/1"))
    assert raw is not None and b"bb" * 32 not in raw


def test_transit(vault: VaultServerInfo) -> None:
    vault.front.store.write(
        lambda tx: records.add_mount(
            tx, vault.tenant, records.Mount("transit", "transit", vault.kms_key)
        )
    )
    token, _ = vault.front.store.write(
        lambda tx: records.new_token(tx, vault.front.root, vault.tenant, "transit", "app")
    )
    plain = base64.b64encode(b"card 4111").decode()
    status, body = _call(vault, "/v1/transit/encrypt/orders", {"plaintext": plain}, token)
    assert status == 200
    ciphertext = body["data"]["ciphertext"]
    assert ciphertext.startswith("vault:v1:")
    status, body = _call(vault, "/v1/transit/decrypt/orders", {"ciphertext": ciphertext}, token)
    assert base64.b64decode(body["data"]["plaintext"]) == b"card 4111"
    # bound to the key name: another name does not decrypt it
    assert _call(vault, "/v1/transit/decrypt/other", {"ciphertext": ciphertext}, token)[0] == 400
    status, body = _call(vault, "/v1/transit/datakey/plaintext/orders", {}, token)
    assert len(base64.b64decode(body["data"]["plaintext"])) == 32
    unwrapped = _call(
        vault, "/v1/transit/decrypt/orders", {"ciphertext": body["data"]["ciphertext"]}, token
    )[1]
    assert unwrapped["data"]["plaintext"] == body["data"]["plaintext"]
    assert (
        "plaintext" not in _call(vault, "/v1/transit/datakey/wrapped/orders", {}, token)[1]["data"]
    )
    assert _call(vault, "/v1/transit/encrypt/orders", {"plaintext": "%%%"}, token)[0] == 400


def test_every_read_is_audited(vault: VaultServerInfo) -> None:
    _call(vault, "/v1/mariadb/data/1")
    vault.service.audit.flush()
    events = [
        json.loads(r.body) for r in vault.front.store.read(lambda tx: tx.read_audit(0, 100000))
    ]
    reads = [e for e in events if e.get("operation") == "vault:ReadSecret"]
    assert reads and reads[-1]["account"] == vault.tenant and reads[-1]["result"] == "Success"
    assert all("aa" * 32 not in json.dumps(e) for e in events)


def test_kv_writes_over_http_are_refused_with_the_way_out(vault: VaultServerInfo) -> None:
    before = _call(vault, f"/v1/{vault.mount}/data/1")[1]["data"]
    status, body = _call(vault, f"/v1/{vault.mount}/data/1", {"data": {"data": "cc" * 32}})
    assert status == 405
    assert "strongroom vault kv new-key" in body["errors"][0]
    assert _call(vault, f"/v1/{vault.mount}/data/1")[1]["data"] == before  # unchanged
