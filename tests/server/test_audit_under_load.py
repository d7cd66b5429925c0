"""Audit under load: every request is in the hash-chained log within a second, in batches."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from strongroom.audittrail import CheckpointFile
from strongroom.kms.audit import GENESIS_HASH, verify_chain
from strongroom.kms.audit_key import read_audit_chain
from strongroom.ports.sealed_store import seal_store
from strongroom.rootkey import open_root_of_trust
from strongroom.store import SqliteStore
from strongroom.testing.server import ServerProcess, client_for
from strongroom.testing.server_clients import signed_kms_request

THREADS = 4
OPS_PER_THREAD = 600
BOTO3_OPS = 100
MAX_DELAY_SECONDS = 1.0
POLL_SECONDS = 0.02


class ChainWatcher:
    """Reads the audit chain as it grows (its own read transactions) and verifies it."""

    def __init__(self, db: Path) -> None:
        root = open_root_of_trust("local", db.parent)
        try:
            # the audit key is a record of the store, sealed like the others
            self.store = seal_store(SqliteStore(db), root)
            self.chain = read_audit_chain(self.store, root)
        finally:
            root.close()
        self.seen: dict[str, float] = {}
        self.seq, self.head = 0, GENESIS_HASH
        self.stop = threading.Event()

    def poll(self) -> None:
        while True:
            page = self.store.read(lambda tx: tx.read_audit(self.seq, 5000))
            if not page:
                return
            now = time.time()
            self.seq, self.head = verify_chain(page, self.head, self.seq, self.chain)
            for record in page:
                request_id = json.loads(record.body).get("requestId")
                if request_id:
                    self.seen.setdefault(request_id, now)

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(POLL_SECONDS)


def _lean_worker(
    info: Any, requests: list[tuple[dict[str, str], bytes]], answered: dict[str, float]
) -> None:
    """Replay signed requests on one keep-alive connection (far cheaper than boto3)."""
    port = int(info.endpoint_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(info.ca_bundle))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        for i in range(OPS_PER_THREAD):
            headers, body = requests[i % len(requests)]
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            answered[response.getheader("x-amzn-RequestId", "")] = time.time()
            assert response.status in (200, 400), response.status
    finally:
        conn.close()


def _boto3_worker(info: Any, key_id: str, answered: dict[str, float]) -> None:
    """boto3's ResponseMetadata.RequestId is the id the server audits."""
    kms = client_for(info)
    for i in range(BOTO3_OPS):
        try:
            if i % 2:
                response = kms.encrypt(KeyId=key_id, Plaintext=b"audit me")
            else:
                response = kms.describe_key(KeyId="alias/does-not-exist")  # audited failure
        except ClientError as exc:
            response = exc.response
        answered[response["ResponseMetadata"]["RequestId"]] = time.time()


def _counter(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_every_request_is_in_the_chain_within_a_second(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--workers", "2").start()
    watcher = None
    try:
        info = server.info()
        key_id = client_for(info).create_key()["KeyMetadata"]["KeyId"]
        watcher = ChainWatcher(server.data_dir / "strongroom.db")
        poller = threading.Thread(target=watcher.run)
        poller.start()
        blob = client_for(info).encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
        requests = [
            signed_kms_request(info, "Encrypt", {"KeyId": key_id, "Plaintext": "YXVkaXQgbWU="}),
            signed_kms_request(
                info, "Decrypt", {"CiphertextBlob": base64.b64encode(blob).decode()}
            ),
            signed_kms_request(info, "GenerateDataKey", {"KeyId": key_id, "KeySpec": "AES_256"}),
            signed_kms_request(info, "DescribeKey", {"KeyId": "alias/does-not-exist"}),
        ]
        answered: dict[str, float] = {}
        started = time.monotonic()
        threads = [
            threading.Thread(target=_lean_worker, args=(info, requests, answered))
            for _ in range(THREADS)
        ]
        threads.append(threading.Thread(target=_boto3_worker, args=(info, key_id, answered)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        deadline = time.time() + 2 * MAX_DELAY_SECONDS
        while set(answered) - set(watcher.seen) and time.time() < deadline:
            time.sleep(POLL_SECONDS)
        watcher.stop.set()
        poller.join()
        watcher.poll()

        assert len(answered) == THREADS * OPS_PER_THREAD + BOTO3_OPS
        missing = set(answered) - set(watcher.seen)
        assert not missing, f"{len(missing)} request ids never reached the audit chain"
        delays = sorted(watcher.seen[r] - answered[r] for r in answered)
        assert delays[-1] < MAX_DELAY_SECONDS, f"slowest {delays[-5:]}"

        # Batching: one transaction appends many events, not one commit per request.
        metrics = server.get("/metrics")[1].decode()
        events = _counter(metrics, "strongroom_audit_events_written_total")
        batches = _counter(metrics, "strongroom_audit_batches_written_total")
        assert events >= len(answered)
        assert batches * 10 <= events, (events, batches)
        assert batches <= 2 * (elapsed + 5) / 0.2 + 10  # about one per worker per 200 ms
        rate = len(answered) / elapsed
        p50, p99 = delays[len(delays) // 2], delays[len(delays) * 99 // 100]
        print(
            f"{len(answered)} requests in {elapsed:.1f} s ({rate:.0f}/s), {events:.0f} events "
            f"in {batches:.0f} batches; delay p50 {p50:.3f} p99 {p99:.3f} max {delays[-1]:.3f} s"
        )
    finally:
        if watcher is not None:
            watcher.stop.set()
        assert server.stop() == 0
        server.close()
    # Both workers checkpointed into one file, never backwards: after the clean shutdown it
    # names the chain's head, and the head verifies against it.
    assert watcher is not None
    try:
        watcher.poll()
        checkpoint = CheckpointFile(server.data_dir, watcher.chain).read()
    finally:
        watcher.store.close()
    assert checkpoint is not None
    assert (checkpoint.seq, checkpoint.head) == (watcher.seq, watcher.head)
