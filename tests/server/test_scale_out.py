"""Scale-out: two ``strongroom server`` processes over one PostgreSQL and one root of trust."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.cli.context import open_store_for
from strongroom.kms.records import KeyVersionRecord
from strongroom.testing.server import ServerInfo, ServerProcess, client_for

THREADS = 4
ROUNDS = 3


@pytest.fixture
def two_nodes(postgres_server: Any, tmp_path: Path) -> Iterator[tuple[Any, ...]]:
    """Node A initialises the shared store; node B gets a copy of A's config and root key."""
    dsn = postgres_server.create_database("scale_out")
    a_dir, b_dir = tmp_path / "node-a", tmp_path / "node-b"
    node_a = ServerProcess(a_dir, "--store", dsn).start()
    node_b = None
    try:
        b_dir.mkdir(mode=0o700)
        for name in ("config.json", "master.key"):  # what an operator copies to a new node
            shutil.copy2(a_dir / name, b_dir / name)
            os.chmod(b_dir / name, 0o600)
        node_b = ServerProcess(b_dir).start()
        yield node_a, node_b, dsn
    finally:
        for node in (node_b, node_a):
            if node is not None:
                assert node.stop() == 0, node.output()
                node.close()


def _clients(node_a: ServerProcess, node_b: ServerProcess) -> tuple[Any, Any, dict[str, Any]]:
    creds = node_a.credentials()
    info_a = ServerInfo(node_a.endpoint_url, node_a.ca_bundle, creds)
    info_b = ServerInfo(node_b.endpoint_url, node_b.ca_bundle, creds)
    return info_a, info_b, creds


def _eventually_equal(read_a: Any, read_b: Any, seconds: float = 5.0) -> Any:
    """Both nodes agree once their short-lived record caches have expired."""
    deadline = time.monotonic() + seconds
    while True:
        a, b = read_a(), read_b()
        if a == b or time.monotonic() > deadline:
            assert a == b
            return a
        time.sleep(0.1)


def test_two_nodes_share_keys_and_stay_consistent(two_nodes: tuple[Any, ...]) -> None:
    node_a, node_b, _ = two_nodes
    assert (node_b.data_dir / "ca.pem").read_bytes() == (node_a.data_dir / "ca.pem").read_bytes()
    assert not (node_b.data_dir / "admin-credentials.json").exists()
    info_a, info_b, creds = _clients(node_a, node_b)
    kms_a, kms_b = client_for(info_a), client_for(info_b)

    # A key made through one node is used through the other, both ways.
    key_id = kms_a.create_key(Description="shared")["KeyMetadata"]["KeyId"]
    blob = kms_b.encrypt(KeyId=key_id, Plaintext=b"from b")["CiphertextBlob"]
    assert kms_a.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from b"
    blob = kms_a.encrypt(KeyId=key_id, Plaintext=b"from a")["CiphertextBlob"]
    assert kms_b.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from a"

    # Concurrent rotations, alias updates and grant changes through both nodes.
    targets = [kms_b.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)]
    kms_a.create_alias(AliasName="alias/shared", TargetKeyId=targets[0])
    grant_key = kms_a.create_key()["KeyMetadata"]["KeyId"]
    ciphertexts: list[tuple[bytes, bytes]] = []
    created: list[str] = []
    revoked: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        kms = client_for(info_a if index % 2 == 0 else info_b)
        try:
            previous = None
            for round_ in range(ROUNDS):
                kms.rotate_key_on_demand(KeyId=key_id)
                plaintext = f"t{index}r{round_}".encode()
                blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
                kms.update_alias(
                    AliasName="alias/shared", TargetKeyId=targets[(index + round_) % 3]
                )
                grant_id = kms.create_grant(
                    KeyId=grant_key,
                    GranteePrincipal=f"arn:aws:iam::{creds['AccountId']}:user/g{index}-{round_}",
                    Operations=["Decrypt", "Encrypt"],
                )["GrantId"]
                with lock:
                    ciphertexts.append((blob, plaintext))
                    created.append(grant_id)
                if previous is not None and round_ % 2 == 1:
                    kms.revoke_grant(KeyId=grant_key, GrantId=previous)
                    with lock:
                        revoked.append(previous)
                previous = grant_id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    # Versions are contiguous: one per rotation, none lost or doubled.
    rotations = THREADS * ROUNDS
    store = open_store_for(node_a.data_dir)  # records are sealed: read them through the check
    try:
        account = creds["AccountId"]
        rows = store.read(lambda tx: tx.scan(account, "keyver", prefix=key_id + "/"))
    finally:
        store.close()
    versions = [KeyVersionRecord.from_bytes(raw).version for _, raw in rows]
    assert versions == list(range(1, rotations + 2))
    listed = _eventually_equal(
        lambda: kms_a.list_key_rotations(KeyId=key_id)["Rotations"],
        lambda: kms_b.list_key_rotations(KeyId=key_id)["Rotations"],
    )
    assert len(listed) == rotations

    # Every ciphertext, whichever version sealed it, opens on both nodes.
    for blob, plaintext in ciphertexts:
        assert kms_a.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
        assert kms_b.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext

    # The alias names exactly one of the targets, the same on both nodes.
    target = _eventually_equal(
        lambda: kms_a.describe_key(KeyId="alias/shared")["KeyMetadata"]["KeyId"],
        lambda: kms_b.describe_key(KeyId="alias/shared")["KeyMetadata"]["KeyId"],
    )
    assert target in targets
    aliases = [a for a in kms_b.list_aliases()["Aliases"] if a["AliasName"] == "alias/shared"]
    assert [a["TargetKeyId"] for a in aliases] == [target]

    # Grants: the same list on both nodes, exactly the ones created and not revoked.
    def grant_ids(kms: Any) -> list[str]:
        return sorted(g["GrantId"] for g in kms.list_grants(KeyId=grant_key)["Grants"])

    assert _eventually_equal(lambda: grant_ids(kms_a), lambda: grant_ids(kms_b)) == sorted(
        set(created) - set(revoked)
    )
    assert len(created) == rotations and revoked
