"""SQLite's audit append: a batch of events in one statement, cut out by the database.

The statement takes four values, whatever the batch's size: the first event's number, the
bodies end to end, the hashes end to end (the chain head's first, so row ``k``'s
``prev_hash`` is hash ``k - 1``) and a JSON array of ``offset << 32 | length`` per body;
``json_each`` numbers the rows and ``substr`` (which counts bytes in a BLOB) cuts them out.
Binding four values per row cost more in the sqlite3 module than inserting the rows (a
``bytes`` value goes through its adapter lookup, so each was first copied to a
``bytearray``), and a statement per few hundred rows released and took back the GIL each
time, which a thread competing with a busy event loop pays as a wait.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence

import orjson

_INSERT = (
    "INSERT INTO audit (seq, body, prev_hash, hash) "
    "SELECT ?1 + key, substr(?2, (value >> 32) + 1, value & 4294967295), "
    "substr(?3, 32 * key + 1, 32), substr(?3, 32 * key + 33, 32) FROM json_each(?4)"
)
BYTES_PER_INSERT = 1 << 28
"""Bodies per statement, in bytes: well under SQLite's limit of 1 GB for one value."""


def statements(lengths: Sequence[int]) -> list[tuple[int, int]]:
    """The rows ``(start, end)`` of each INSERT of a batch of bodies of ``lengths`` bytes.

    One statement unless the bodies exceed :data:`BYTES_PER_INSERT` together; a body
    larger than that gets a statement of its own.
    """
    if sum(lengths) <= BYTES_PER_INSERT:
        return [(0, len(lengths))]
    ranges: list[tuple[int, int]] = []
    start = size = 0
    for row, length in enumerate(lengths):
        if row > start and size + length > BYTES_PER_INSERT:
            ranges.append((start, row))
            start, size = row, 0
        size += length
    ranges.append((start, len(lengths)))
    return ranges


def insert_events(
    conn: sqlite3.Connection,
    first: int,
    prev: bytes,
    hashes: Sequence[bytes],
    bodies: Sequence[bytes],
) -> None:
    """Insert events ``first, first + 1, ...`` with ``bodies`` and their chain ``hashes``.

    ``prev`` is the hash of event ``first - 1`` (the head they follow).
    """
    chained = b"".join((prev, *hashes))
    lengths = list(map(len, bodies))
    for start, end in statements(lengths):
        part = lengths[start:end]
        offsets = itertools.accumulate(part, initial=0)  # one more than part: the end
        packed = [o << 32 | n for o, n in zip(offsets, part, strict=False)]
        conn.execute(
            _INSERT,
            (
                first + start,
                # substr of a zero-length blob is NULL: empty bodies alone get a byte
                # to be cut from (their length, 0, is what they take of it)
                b"".join(bodies[start:end]) or b"\x00",
                chained[32 * start : 32 * (end + 1)],
                orjson.dumps(packed).decode("ascii"),
            ),
        )
