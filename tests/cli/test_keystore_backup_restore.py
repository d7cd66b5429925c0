"""Whole-store backup and restore over SQLite and PostgreSQL, in process."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from strongroom.cli.keystore import backup_store, restore_store
from strongroom.errors import InvalidCiphertextError, RootOfTrustError, ValidationError
from strongroom.kms import KeyService, SystemClock
from strongroom.ports import Store, StoreTx
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller

_COUNTER = itertools.count()


def _new_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if kind == "sqlite":
        return SqliteStore(tmp_path / f"s{next(_COUNTER)}.db")
    from strongroom.store import PostgresStore

    server = request.getfixturevalue("postgres_server")
    return PostgresStore(server.create_database(f"backup_{next(_COUNTER)}"))


def _dump(store: Store) -> tuple[list[tuple[str, str, str, bytes]], list[tuple[int, bytes]]]:
    def unit(tx: StoreTx) -> tuple[list[tuple[str, str, str, bytes]], list[tuple[int, bytes]]]:
        records = [
            (tenant, kind, name, value)
            for tenant in tx.tenants()
            for kind in tx.kinds(tenant)
            for name, value in tx.scan(tenant, kind)
        ]
        return records, [(r.seq, r.hash) for r in tx.read_audit(0, 100_000)]

    return store.read(unit)


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def test_backup_restores_every_record_and_the_chain(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root = LocalRootOfTrust.create(tmp_path / "master.key")
    service = KeyService(_new_store(store_kind, tmp_path, request), root, SystemClock())
    alice = tenant_caller(service, "alice")
    tenant_caller(service, "bob")
    blobs = []
    for i in range(4):
        key_id = service.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
        service.call(alice, "CreateAlias", {"AliasName": f"alias/k{i}", "TargetKeyId": key_id})
        service.call(alice, "RotateKeyOnDemand", {"KeyId": key_id})
        blobs.append(
            service.call(alice, "Encrypt", {"KeyId": f"alias/k{i}", "Plaintext": b"p%d" % i})
        )
    service.audit.flush()
    # Records of a kind the core does not write today are kept too.
    service.store.write(lambda tx: tx.put("_global", "zz-future", "x/\U0010ffff", b"\x00\xff"))
    before = _dump(service.store)

    sink = io.BytesIO()
    summary = backup_store(service.store, root, sink, chunk_size=4096)
    assert summary.records == len(before[0]) and summary.audit_events == len(before[1])

    target = _new_store(store_kind, tmp_path, request)
    restored = restore_store(target, root, io.BytesIO(sink.getvalue()))
    assert restored == summary
    records, audit = _dump(target)
    assert records == before[0]
    assert audit[: len(before[1])] == before[1]  # the same chain, hash for hash
    assert len(audit) == len(before[1]) + 1  # plus the RestoreKeystore event

    copy = KeyService(target, root, SystemClock())
    for i, blob in enumerate(blobs):
        got = copy.call(alice, "Decrypt", {"CiphertextBlob": blob["CiphertextBlob"]})
        assert got["Plaintext"] == b"p%d" % i
    copy.close()
    service.close()


def test_restore_is_all_or_nothing_and_needs_an_empty_store(tmp_path: Path) -> None:
    root = LocalRootOfTrust.create(tmp_path / "master.key")
    source = SqliteStore(tmp_path / "a.db")
    service = KeyService(source, root, SystemClock())
    tenant_caller(service, "alice")
    service.audit.flush()
    source.write(
        lambda tx: tx.insert_many("t", "userkey", [(f"u{i:05d}", b"v" * 50) for i in range(3000)])
    )
    sink = io.BytesIO()
    backup_store(source, root, sink, chunk_size=1024)
    good = sink.getvalue()

    damaged = bytearray(good)
    damaged[-3] ^= 1  # inside the tag of the final chunk: found only at the very end
    target = SqliteStore(tmp_path / "b.db")
    with pytest.raises(InvalidCiphertextError):
        restore_store(target, root, io.BytesIO(bytes(damaged)))
    assert _dump(target) == ([], [])

    with pytest.raises(InvalidCiphertextError):
        restore_store(target, root, io.BytesIO(good[:-1000]))
    assert _dump(target) == ([], [])

    other_root = LocalRootOfTrust.create(tmp_path / "other.key")
    with pytest.raises(RootOfTrustError, match="not made under this root of trust"):
        restore_store(target, other_root, io.BytesIO(good))
    assert _dump(target) == ([], [])

    restore_store(target, root, io.BytesIO(good))
    with pytest.raises(ValidationError, match="not empty"):
        restore_store(target, root, io.BytesIO(good))
    service.close()
    target.close()


_SCALE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from strongroom.cli.keystore import backup_store, restore_store
    from strongroom.rootkey import LocalRootOfTrust
    from strongroom.store import SqliteStore

    def peak_rss():
        # VmHWM belongs to this process image (ru_maxrss would include the forking parent)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM")

    base, n = Path(sys.argv[1]), int(sys.argv[2])
    root = LocalRootOfTrust.create(base / "master.key")
    source = SqliteStore(base / "a.db")
    value = os.urandom(120)
    for start in range(0, n, 50_000):
        items = [(f"key-1/user-{i:09d}", value) for i in range(start, min(n, start + 50_000))]
        source.write(lambda tx: tx.insert_many("111122223333", "userkey", items))
    with open(base / "backup", "wb") as sink:
        made = backup_store(source, root, sink)
    target = SqliteStore(base / "b.db")
    with open(base / "backup", "rb") as src:
        restored = restore_store(target, root, src)
    count = target.read(lambda tx: tx.count("111122223333", "userkey"))
    print(json.dumps({
        "made": made.records, "restored": restored.records, "count": count,
        "size": (base / "backup").stat().st_size,
        "peak_rss": peak_rss(),
    }))
    """
)


@pytest.mark.slow
def test_a_million_user_keys_stream_through(tmp_path: Path) -> None:
    """1,000,000 user keys back up and restore with memory far below the backup's size."""
    n = 1_000_000
    proc = subprocess.run(
        [sys.executable, "-c", _SCALE_SCRIPT, str(tmp_path), str(n)],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    result = json.loads(proc.stdout)
    assert result["made"] == result["restored"] == result["count"] == n
    assert result["size"] > 150_000_000
    assert result["peak_rss"] < result["size"] // 2, result  # never the whole store in memory
