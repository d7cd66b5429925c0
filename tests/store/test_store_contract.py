"""The Store/StoreTx contract (kms/ports.py), run over every store: SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.kms.audit import GENESIS_HASH, chain_hash, verify_chain
from strongroom.ports import Store
from strongroom.ports.audit_chain import AuditChain
from strongroom.store import open_store

_COUNTER = itertools.count()

# Names in code-point (= UTF-8 byte) order, including the awkward ends of Unicode.
ORDERED_NAMES = [
    "",
    "-",
    "0",
    "A",
    "Z",
    "a",
    "a\x01",
    "ab",
    "a\u00ff",
    "b",
    "z",
    "\u00e9",
    "\u00ff",
    "\u0100",
    "\u4e2d",
    "\ud7ff",
    "\ue000",
    "\uffff",
    "\U0001f600",
    "\U0010ffff",
    "\U0010ffffa",
]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming a fresh, empty store of each kind (nothing opened yet)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    server: Any = request.getfixturevalue("postgres_server")
    return str(server.create_database(f"contract_{os.getpid()}_{next(_COUNTER)}"))


@pytest.fixture(params=["plain", "sealed"])
def store(request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> Iterator[Store]:
    """The store, bare or sealed (every record MAC'd): the contract holds for both."""
    s = open_store(store_url)
    if request.param == "sealed":
        from strongroom.ports.sealed_store import seal_store
        from strongroom.rootkey import LocalRootOfTrust

        s = seal_store(s, LocalRootOfTrust.create(tmp_path / "contract-master.key"))
    yield s
    s.close()


def test_get_put_insert_delete(store: Store) -> None:
    assert store.read(lambda tx: tx.get("t1", "key", "k")) is None
    assert store.write(lambda tx: tx.insert("t1", "key", "k", b"v1")) is True
    assert store.write(lambda tx: tx.insert("t1", "key", "k", b"v2")) is False
    assert store.read(lambda tx: tx.get("t1", "key", "k")) == b"v1"
    store.write(lambda tx: tx.put("t1", "key", "k", b"v3"))
    store.write(lambda tx: tx.put("t1", "key", "new", b""))
    assert store.read(lambda tx: tx.get("t1", "key", "k")) == b"v3"
    assert store.read(lambda tx: tx.get("t1", "key", "new")) == b""
    # Same name under another tenant or kind is another record.
    assert store.read(lambda tx: tx.get("t2", "key", "k")) is None
    assert store.read(lambda tx: tx.get("t1", "alias", "k")) is None
    assert store.write(lambda tx: tx.delete("t1", "key", "k")) is True
    assert store.write(lambda tx: tx.delete("t1", "key", "k")) is False
    assert store.read(lambda tx: tx.get("t1", "key", "k")) is None


def test_values_are_opaque_bytes(store: Store) -> None:
    value = bytes(range(256)) * 40
    store.write(lambda tx: tx.put("t", "blob", "x", value))
    got = store.read(lambda tx: tx.get_for_update("t", "blob", "x"))
    assert got == value
    assert type(got) is bytes


def test_insert_many_skips_existing_and_first_duplicate_wins(store: Store) -> None:
    store.write(lambda tx: tx.insert("t", "u", "b", b"old"))
    items = [("a", b"1"), ("b", b"2"), ("c", b"3"), ("a", b"dup")]
    assert store.write(lambda tx: tx.insert_many("t", "u", items)) == 2
    assert store.write(lambda tx: tx.insert_many("t", "u", [])) == 0
    assert store.read(lambda tx: tx.scan("t", "u")) == [("a", b"1"), ("b", b"old"), ("c", b"3")]


def test_insert_many_large_batch_path(store: Store) -> None:
    items = [(f"n{i:05d}", i.to_bytes(4, "big")) for i in range(5000)]
    items.append(("n00007", b"dup"))
    store.write(lambda tx: tx.insert("t", "u", "n00042", b"old"))
    assert store.write(lambda tx: tx.insert_many("t", "u", items)) == 4999
    assert store.read(lambda tx: tx.get("t", "u", "n00007")) == (7).to_bytes(4, "big")
    assert store.read(lambda tx: tx.get("t", "u", "n00042")) == b"old"
    assert store.read(lambda tx: tx.count("t", "u")) == 5000


def test_get_many_and_put_many(store: Store) -> None:
    store.write(lambda tx: tx.insert_many("t", "u", [("a", b"1"), ("b", b"2"), ("c", b"3")]))
    store.write(lambda tx: tx.put("t", "other", "a", b"other kind"))
    store.write(lambda tx: tx.put("t0", "u", "a", b"other tenant"))
    got = store.read(lambda tx: tx.get_many("t", "u", ["a", "c", "missing", "a", "a\x01"]))
    assert got == {"a": b"1", "c": b"3"}
    assert store.read(lambda tx: tx.get_many("t", "u", [])) == {}
    # replace some, create others; for a name given twice the last value wins
    items = [("b", b"new"), ("d", b"4"), ("d", b"last"), ("e", bytes(range(256)))]
    store.write(lambda tx: tx.put_many("t", "u", items))
    store.write(lambda tx: tx.put_many("t", "u", []))
    assert store.read(lambda tx: tx.scan("t", "u")) == [
        ("a", b"1"),
        ("b", b"new"),
        ("c", b"3"),
        ("d", b"last"),
        ("e", bytes(range(256))),
    ]
    assert store.read(lambda tx: tx.get("t", "other", "a")) == b"other kind"
    many = [f"n{i:05d}" for i in range(3000)]  # beyond any bound-parameter limit
    store.write(lambda tx: tx.put_many("t", "big", [(n, n.encode()) for n in many]))
    found = store.read(lambda tx: tx.get_many("t", "big", many[::-1]))
    assert found == {n: n.encode() for n in many}


def test_scan_orders_by_code_point_and_paginates(store: Store) -> None:
    shuffled = ORDERED_NAMES[:]
    random.Random(7).shuffle(shuffled)
    store.write(lambda tx: tx.insert_many("t", "k", [(n, n.encode()) for n in shuffled]))
    store.write(lambda tx: tx.put("t", "other", "a0", b"x"))
    store.write(lambda tx: tx.put("t0", "k", "a0", b"x"))
    assert [n for n, _ in store.read(lambda tx: tx.scan("t", "k"))] == ORDERED_NAMES
    assert all(v == n.encode() for n, v in store.read(lambda tx: tx.scan("t", "k")))
    assert [n for n, _ in store.read(lambda tx: tx.scan("t", "k", prefix="a"))] == [
        "a",
        "a\x01",
        "ab",
        "a\u00ff",
    ]
    assert [n for n, _ in store.read(lambda tx: tx.scan("t", "k", prefix="\U0010ffff"))] == [
        "\U0010ffff",
        "\U0010ffffa",
    ]
    assert [n for n, _ in store.read(lambda tx: tx.scan("t", "k", after="\u4e2d", limit=2))] == [
        "\ud7ff",
        "\ue000",
    ]
    assert store.read(lambda tx: tx.scan("t", "k", prefix="a", after="b")) == []
    assert store.read(lambda tx: tx.scan("t", "k", prefix="a", after="0", limit=1)) == [("a", b"a")]
    assert store.read(lambda tx: tx.scan("t", "k", limit=0)) == []
    pages: list[str] = []
    after: str | None = None
    while page := store.read(lambda tx, a=after: tx.scan("t", "k", after=a, limit=3)):  # type: ignore[misc]  # mypy infers no lambda with defaults
        pages.extend(n for n, _ in page)
        after = page[-1][0]
    assert pages == ORDERED_NAMES


def test_count_delete_prefix_and_tenants(store: Store) -> None:
    assert store.read(lambda tx: tx.tenants()) == []
    names = ["a", "a/1", "a/2", "a0", "b", "\u00e9", "\u00e9/x"]
    for tenant in ["\u00e9t", "t2", "T1", "t10"]:
        store.write(lambda tx, t=tenant: tx.insert_many(t, "k", [(n, b"") for n in names]))  # type: ignore[misc]  # mypy infers no lambda with defaults
    assert store.read(lambda tx: tx.tenants()) == ["T1", "t10", "t2", "\u00e9t"]
    assert store.read(lambda tx: tx.count("t2", "k")) == 7
    assert store.read(lambda tx: tx.count("t2", "k", "a")) == 4
    assert store.read(lambda tx: tx.count("t2", "k", "\u00e9")) == 2
    assert store.read(lambda tx: tx.count("t2", "nothing")) == 0
    assert store.write(lambda tx: tx.delete_prefix("t2", "k", "a/")) == 2
    assert store.write(lambda tx: tx.delete_prefix("t2", "k", "zz")) == 0
    assert [n for n, _ in store.read(lambda tx: tx.scan("t2", "k"))] == [
        "a",
        "a0",
        "b",
        "\u00e9",
        "\u00e9/x",
    ]
    assert store.read(lambda tx: tx.count("t10", "k")) == 7  # other tenants untouched
    assert store.write(lambda tx: tx.delete_prefix("t2", "k", "")) == 5
    assert store.read(lambda tx: tx.tenants()) == ["T1", "t10", "\u00e9t"]


class Boom(Exception):
    pass


def test_exception_rolls_back_everything_and_propagates_unchanged(store: Store) -> None:
    store.write(lambda tx: tx.put("t", "k", "keep", b"1"))
    boom = Boom("no")

    def fn(tx: Any) -> None:
        tx.put("t", "k", "keep", b"changed")
        tx.insert("t", "k", "new", b"x")
        tx.insert_many("t", "k", [(f"m{i}", b"") for i in range(3000)])
        tx.delete("t", "k", "keep")
        tx.append_audit([b"never"])
        raise boom

    with pytest.raises(Boom) as info:
        store.write(fn)
    assert info.value is boom
    assert store.read(lambda tx: tx.scan("t", "k")) == [("keep", b"1")]
    assert store.read(lambda tx: tx.read_audit()) == []
    with pytest.raises(Boom) as info:
        store.read(lambda tx: (_ for _ in ()).throw(boom))
    assert info.value is boom
    # The store still works, and the chain starts at 1 with no gap.
    assert [r.seq for r in store.write(lambda tx: tx.append_audit([b"a"]))] == [1]


def test_a_write_unit_sees_its_own_writes(store: Store) -> None:
    def fn(tx: Any) -> tuple[Any, ...]:
        tx.put("t", "k", "x", b"1")
        tx.insert_many("t", "k", [("y", b"2"), ("z", b"3")])
        return tx.get("t", "k", "x"), tx.count("t", "k"), tx.tenants()

    assert store.write(fn) == (b"1", 3, ["t"])


def test_audit_append_read_and_verify(store: Store) -> None:
    assert store.write(lambda tx: tx.append_audit([])) == []
    first = store.write(lambda tx: tx.append_audit([b"e1", b"e2"]))
    assert [r.seq for r in first] == [1, 2]
    assert first[0].prev_hash == GENESIS_HASH
    assert first[0].hash == chain_hash(GENESIS_HASH, 1, b"e1")
    assert first[1].prev_hash == first[0].hash
    for i in range(3, 11):
        store.write(lambda tx, i=i: tx.append_audit([f"e{i}".encode()]))  # type: ignore[misc]  # mypy infers no lambda with defaults
    records = store.read(lambda tx: tx.read_audit())
    assert records[:2] == first
    assert [r.body for r in records] == [f"e{i}".encode() for i in range(1, 11)]
    assert verify_chain(records) == (10, records[-1].hash)
    page = store.read(lambda tx: tx.read_audit(after_seq=4, limit=3))
    assert [r.seq for r in page] == [5, 6, 7]
    assert verify_chain(page, records[3].hash, 4)[0] == 7


def test_audit_append_head_returns_the_newest_event_as_stored(store: Store) -> None:
    chain = AuditChain(bytes(range(32)))
    assert store.write(lambda tx: tx.append_audit_head([], chain)) is None
    one = store.write(lambda tx: tx.append_audit_head([b"e1"], chain))
    assert one is not None and (one.seq, one.body, one.prev_hash) == (1, b"e1", GENESIS_HASH)
    bodies = [f"e{i}".encode() * i for i in range(2, 1203)]  # more than one INSERT's rows
    head = store.write(lambda tx: tx.append_audit_head(bodies, chain))
    after = store.write(lambda tx: tx.append_audit([b"last"], chain))
    records = store.read(lambda tx: tx.read_audit(limit=10_000))
    assert head == records[-2] and after == records[-1:]
    assert [r.body for r in records] == [b"e1", *bodies, b"last"]
    assert verify_chain(records, chain=chain) == (1203, after[0].hash)


AWKWARD_BODIES = st.lists(
    st.binary(max_size=300) | st.sampled_from([b"", b"\x00", b"\xff" * 33, b"x" * 70_000]),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(AWKWARD_BODIES, min_size=1, max_size=3))
def test_audit_batches_of_any_bytes_are_stored_exactly_and_chain(
    store: Store, batches: list[list[bytes]]
) -> None:
    # A batch goes to the store in one statement (bodies end to end, cut out by the
    # database): empty bodies, NUL and non-UTF-8 bytes, a large body among small ones,
    # each comes back byte for byte, numbered and linked as a body-by-body append would.
    chain = AuditChain(bytes(range(32)))
    before = store.read(lambda tx: tx.read_audit(limit=100_000))
    prev_seq, prev_hash = (before[-1].seq, before[-1].hash) if before else (0, GENESIS_HASH)
    for batch in batches:
        head = store.write(lambda tx, b=batch: tx.append_audit_head(b, chain))  # type: ignore[misc]  # mypy infers no lambda with defaults
        assert head is not None and head.body == batch[-1]
    records = store.read(lambda tx: tx.read_audit(after_seq=prev_seq, limit=100_000))
    assert [r.body for r in records] == [body for batch in batches for body in batch]
    expected = chain.links(prev_hash, prev_seq, [r.body for r in records])
    assert [r.hash for r in records] == expected
    assert verify_chain(records, prev_hash, prev_seq, chain)[0] == prev_seq + len(records)


def _run_threads(n: int, target: Callable[[int], object]) -> None:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _bump(tx: Any, lock: bool = True) -> int:
    raw = (tx.get_for_update if lock else tx.get)("t", "counter", "c")
    value = int(raw or b"0") + 1
    tx.put("t", "counter", "c", str(value).encode())
    return value


def test_concurrent_read_modify_write_from_threads(store: Store) -> None:
    _run_threads(8, lambda _: [store.write(_bump) for _ in range(50)] and None)
    assert store.read(lambda tx: tx.get("t", "counter", "c")) == b"400"


def test_plain_get_then_put_is_isolated_too(store: Store) -> None:
    # Without get_for_update a unit is still one isolated step: no lost updates.
    _run_threads(
        4, lambda _: [store.write(lambda tx: _bump(tx, False)) for _ in range(25)] and None
    )
    assert store.read(lambda tx: tx.get("t", "counter", "c")) == b"100"


def test_concurrent_audit_appends_from_threads_keep_one_chain(store: Store) -> None:
    def worker(i: int) -> None:
        for j in range(20):
            store.write(
                lambda tx, j=j: tx.append_audit([f"{i}/{j}/a".encode(), f"{i}/{j}/b".encode()])  # type: ignore[misc]  # mypy infers no lambda with defaults
            )

    _run_threads(8, worker)
    records = store.read(lambda tx: tx.read_audit(limit=10_000))
    assert verify_chain(records)[0] == 320
    assert len({r.body for r in records}) == 320
    for a, b in itertools.pairwise(records):  # each unit's two events stay together
        if a.body.endswith(b"/a"):
            assert b.body == a.body[:-1] + b"b"


WORKER = """
import sys
from strongroom.store import open_store
url, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.stdin.read(1)  # the start gate: every process opens the store at the same moment
store = open_store(url)
def bump(tx):
    value = int(tx.get_for_update("t", "counter", "c") or b"0") + 1
    tx.put("t", "counter", "c", str(value).encode())
    tx.append_audit([f"{value}:{tag}".encode()])
for _ in range(count):
    store.write(bump)
store.close()
"""


def test_concurrent_writers_from_several_processes(store_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, store_url, "100", f"p{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(3)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"g")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    store = open_store(store_url)
    try:
        assert store.read(lambda tx: tx.get("t", "counter", "c")) == b"300"
        records = store.read(lambda tx: tx.read_audit(limit=1000))
    finally:
        store.close()
    assert verify_chain(records)[0] == 300
    # The counter and the chain moved in lock step: event n recorded value n.
    assert [int(r.body.split(b":")[0]) for r in records] == list(range(1, 301))
    assert {r.body.split(b":")[1] for r in records} == {b"p0", b"p1", b"p2"}


def test_hundred_thousand_rows_then_random_gets(store: Store) -> None:
    rng = random.Random(1)
    items = [(f"user-{i:08x}", rng.randbytes(48)) for i in rng.sample(range(1 << 32), 100_000)]
    assert store.write(lambda tx: tx.insert_many("t", "userkey", items)) == 100_000
    picks = rng.sample(items, 300)
    for name, value in picks[:200]:
        assert store.read(lambda tx, n=name: tx.get("t", "userkey", n)) == value  # type: ignore[misc]  # mypy infers no lambda with defaults
    got = store.read(lambda tx: [tx.get("t", "userkey", n) for n, _ in picks[200:]])
    assert got == [v for _, v in picks[200:]]
    assert store.read(lambda tx: tx.get("t", "userkey", "user-absent")) is None
    assert store.read(lambda tx: tx.count("t", "userkey")) == 100_000
    assert store.read(lambda tx: tx.scan("t", "userkey", limit=5)) == sorted(items)[:5]


NAME_CHARS = st.sampled_from(
    ["a", "b", "z", "A", "0", "-", "\u00e9", "\u00ff", "\u4e2d", "\U0001f600", "\U0010ffff"]
)
NAMES = st.text(NAME_CHARS, max_size=4)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.sets(NAMES, max_size=25),
    queries=st.lists(
        st.tuples(NAMES.map(lambda s: s[:2]), st.none() | NAMES, st.none() | st.integers(0, 6)),
        min_size=1,
        max_size=6,
    ),
)
def test_scan_count_and_pagination_match_a_model(
    store: Store, names: set[str], queries: list[tuple[str, str | None, int | None]]
) -> None:
    tenant = f"h{next(_COUNTER)}"
    store.write(lambda tx: tx.insert_many(tenant, "k", [(n, n.encode()) for n in names]))
    model = sorted(names)
    for prefix, after, limit in queries:
        want = [n for n in model if n.startswith(prefix) and (after is None or n > after)]
        got = store.read(lambda tx, p=prefix, a=after, lim=limit: tx.scan(tenant, "k", p, a, lim))  # type: ignore[misc]  # mypy infers no lambda with defaults
        assert [n for n, _ in got] == want[:limit]
        assert store.read(lambda tx, p=prefix: tx.count(tenant, "k", p)) == len(  # type: ignore[misc]  # mypy infers no lambda with defaults
            [n for n in model if n.startswith(prefix)]
        )
    prefix = queries[0][0]
    pages: list[str] = []
    cursor: str | None = None
    while page := store.read(lambda tx, c=cursor: tx.scan(tenant, "k", prefix, c, 4)):  # type: ignore[misc]  # mypy infers no lambda with defaults
        pages.extend(n for n, _ in page)
        cursor = page[-1][0]
    assert pages == [n for n in model if n.startswith(prefix)]
    deleted = store.write(lambda tx: tx.delete_prefix(tenant, "k", prefix))
    assert deleted == len(pages)
    assert [n for n, _ in store.read(lambda tx: tx.scan(tenant, "k"))] == [
        n for n in model if not n.startswith(prefix)
    ]
