"""Write tests/vectors/backup_v1.json: backup repository format v1 vectors (and tree v2).

Run ``python tests/vectors/generate_backup.py`` from the repository root. Secrets, salts
and padding are fixed, so the output is deterministic; tests/backup/test_vectors.py checks
the file both ways and against an independent decoder written from docs/formats.md.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from strongroom.backup.chunker import Chunker
from strongroom.backup.config import KeyFile, RepoConfig
from strongroom.backup.index import encode_index
from strongroom.backup.keyring import IndexKeys, Purpose, SessionKey
from strongroom.backup.pack import COMP_NONE, COMP_ZSTD, TYPE_DATA, TYPE_TREE, PackBuilder
from strongroom.backup.sealed import KIND_INDEX, KIND_SNAPSHOT, seal
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.tree import Node, encode_tree

OUT = Path(__file__).with_name("backup_v1.json")
REPO_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
INDEX_SID = bytes.fromhex("10" * 16)
INDEX_SECRET = bytes(range(32))
DATA_SID = bytes.fromhex("20" * 16)
DATA_SECRET = bytes(range(32, 64))
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _salt(label: str) -> bytes:
    return hashlib.sha256(b"backup vector salt " + label.encode()).digest()


def _data(n: int, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(b"backup vector data %d %d" % (n, counter)).digest()
        counter += 1
    return bytes(out[:length])


def _hard_linked(content: list[bytes | int]) -> list[Node]:
    """A tree v2: a file with two names (``links``, ``inode``, ``device``), a lone file
    with extended attributes (``xattrs``) and a character device (``rdev``)."""
    first = Node("a", "file", 0o644, 1000, 1000, "ann", "staff", 1_700_000_000_000_000_001, 100)
    first.content = content[:1]
    second = Node("b", "hardlink", 0o644, 1000, 1000, "ann", "staff", 1_700_000_000_000_000_001)
    second.link = "home/a"
    for node in (first, second):
        node.links, node.inode, node.device = 2, 1_234_567, 2049
    lone = Node("c", "file", 0o600, 0, 0, "root", "root", 5, 0)
    lone.xattrs = {"user.mime_type": b"text/plain", "user.empty": b""}
    null = Node("null", "chardev", 0o666, 0, 0, "root", "root", 6, 0, rdev=259)
    return [first, second, lone, null]


def build() -> dict[str, Any]:
    """Every vector, deterministically."""
    keys = IndexKeys.derive(REPO_ID, INDEX_SID, INDEX_SECRET)
    data_key = SessionKey.derive(REPO_ID, DATA_SID, Purpose.DATA, DATA_SECRET)
    config = RepoConfig(REPO_ID, INDEX_SID)
    created = "2026-01-01T00:00:00.000000Z"
    key_file = KeyFile(REPO_ID, INDEX_SID, Purpose.INDEX, KEY_ARN, b"\x01wrapped-by-kms", created)

    chunks = [_data(1, 100), b"log line\n" * 40, b""]
    content: list[bytes | int] = [keys.data_id(c) for c in chunks[:2]]
    size = sum(len(c) for c in chunks[:2]) + 4096
    node = Node("file.txt", "file", 0o640, 1000, 1000, "ann", "staff", 1_700_000_000_123_456_789)
    node.size, node.content = size, [*content, 4096]
    tree = encode_tree(
        [node, Node("link", "symlink", 0o777, 0, 0, "", "", 5, 0, target="file.txt")]
    )
    tree_id = keys.tree_id(tree)
    tree_v2 = encode_tree(_hard_linked(content))
    import zstandard

    builder = PackBuilder(data_key, salt=_salt("pack"))
    builder.add(TYPE_DATA, COMP_NONE, keys.data_id(chunks[0]), len(chunks[0]), chunks[0])
    packed = zstandard.ZstdCompressor(level=1).compress(chunks[1])
    builder.add(TYPE_DATA, COMP_ZSTD, keys.data_id(chunks[1]), len(chunks[1]), packed)
    builder.add(TYPE_TREE, COMP_NONE, tree_id, len(tree), tree)
    entries = list(builder.entries)
    pack_name, pack = builder.finish(padding=7)

    index_body = encode_index({pack_name: entries})
    index_file = seal(keys.session, KIND_INDEX, index_body, salt=_salt("index"))
    snapshot = Snapshot("2026-01-02T03:04:05.000006Z", "host", "ann", ("/home/ann",), tree_id,
                        None, ("daily",), {"files_new": 1})  # fmt: skip
    snapshot_file = seal(data_key, KIND_SNAPSHOT, snapshot.encode(), salt=_salt("snapshot"))
    chunker = Chunker(config, keys.chunker_seed)
    source = _data(9, 3 << 20)
    return {
        "format": "strongroom backup repository, version 1 (docs/formats.md)",
        "zstd_version": ".".join(map(str, zstandard.ZSTD_VERSION)),
        "repo_id": REPO_ID.hex(),
        "index_secret": {"sid": INDEX_SID.hex(), "secret": INDEX_SECRET.hex()},
        "data_secret": {"sid": DATA_SID.hex(), "secret": DATA_SECRET.hex()},
        "derived": {
            "index_prk": keys.session.prk.hex(),
            "data_prk": data_key.prk.hex(),
            "chunker_seed": keys.chunker_seed,
            "data_id_key": keys.data_id_key.hex(),
            "tree_id_key": keys.tree_id_key.hex(),
            "config_mac_key": keys.config_mac_key.hex(),
            "cache_mac_key": keys.cache_mac_key.hex(),
        },
        "config": config.encode(keys).hex(),
        "key_file": {"name": key_file.name(), "bytes": key_file.encode().hex()},
        "chunks": [c.hex() for c in chunks[:2]],
        "tree": {"id": tree_id.hex(), "bytes": tree.hex()},
        "tree_v2": {"id": keys.tree_id(tree_v2).hex(), "bytes": tree_v2.hex()},
        "pack": {"name": pack_name, "bytes": pack.hex(), "padding": 7},
        "index_file": {
            "name": hashlib.sha256(index_file).hexdigest(),
            "bytes": index_file.hex(),
            "body": index_body.hex(),
        },
        "snapshot_file": {
            "id": hashlib.sha256(snapshot_file).hexdigest(),
            "bytes": snapshot_file.hex(),
            "body": snapshot.encode().hex(),
        },
        "chunker": {
            "source": "SHA-256 counter stream 9, 3 MiB",
            "cuts": [list(c) for c in chunker.cut(source)],
        },
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
