"""Backup format v1 vectors: checked both ways and against a reference decoder from the spec.

The reference functions below use only the standard library's HMAC/SHA-256,
``cryptography``'s AES-GCM and ``zstandard``, written from docs/formats.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.backup.config import KeyFile, RepoConfig
from strongroom.backup.errors import CorruptError
from strongroom.backup.index import decode_index
from strongroom.backup.keyring import IndexKeys, Purpose, SessionKey
from strongroom.backup.pack import pack_digest, read_header
from strongroom.backup.sealed import KIND_INDEX, KIND_SNAPSHOT, unseal
from strongroom.backup.snapshot import Snapshot
from strongroom.backup.tree import decode_tree, encode_tree

V = json.loads((Path(__file__).parents[1] / "vectors" / "backup_v1.json").read_text("utf-8"))
REPO = bytes.fromhex(V["repo_id"])
P = b"strongroom-backup-v1 "


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.digest(salt, ikm, hashlib.sha256)
    return expand(prk, info, length)


def expand(prk: bytes, info: bytes, length: int = 32) -> bytes:
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([i]), hashlib.sha256)
        out += block
        i += 1
    return out[:length]


def ref_prk(secret: str, sid: str, purpose: bytes) -> bytes:
    return hkdf(bytes.fromhex(secret), REPO, P + b"prk " + purpose + b" " + bytes.fromhex(sid))


INDEX_PRK = ref_prk(V["index_secret"]["secret"], V["index_secret"]["sid"], b"index")
DATA_PRK = ref_prk(V["data_secret"]["secret"], V["data_secret"]["sid"], b"data")


def test_derivations_match_the_reference() -> None:
    d = V["derived"]
    assert INDEX_PRK.hex() == d["index_prk"] and DATA_PRK.hex() == d["data_prk"]
    for name in ("data-id", "tree-id", "config-mac", "cache-mac"):
        assert expand(INDEX_PRK, P + name.encode()).hex() == d[name.replace("-", "_") + "_key"]
    assert int.from_bytes(expand(INDEX_PRK, P + b"chunker")[:8], "big") >> 1 == d["chunker_seed"]
    keys = IndexKeys.derive(REPO, bytes.fromhex(V["index_secret"]["sid"]),
                            bytes.fromhex(V["index_secret"]["secret"]))  # fmt: skip
    assert keys.session.prk == INDEX_PRK and keys.chunker_seed == d["chunker_seed"]


def test_reference_decoder_opens_the_pack() -> None:
    pack = bytes.fromhex(V["pack"]["bytes"])
    magic, version, sid, salt, commitment = struct.unpack(">4sB16s32s32s", pack[:85])
    assert (magic, version, sid.hex()) == (b"SRBP", 1, V["data_secret"]["sid"])
    okm = expand(DATA_PRK, P + b"pack " + salt, 64)
    assert hmac.compare_digest(okm[32:], commitment)
    aead = AESGCM(okm[:32])
    (hlen,) = struct.unpack(">I", pack[-4:])
    header = aead.decrypt(bytes(12), pack[-4 - hlen : -4], REPO + pack[:85] + b"header")
    (count,) = struct.unpack(">I", header[:4])
    assert count == 3 and header[4 + 46 * 3 :] == bytes(V["pack"]["padding"])
    id_key = bytes.fromhex(V["derived"]["data_id_key"])
    tree_key = bytes.fromhex(V["derived"]["tree_id_key"])
    plains = []
    for i in range(count):
        kind, comp, blob_id, off, length, ulen = struct.unpack(
            ">BB32sIII", header[4 + 46 * i : 4 + 46 * (i + 1)]
        )
        aad = REPO + pack[:85] + i.to_bytes(8, "big") + bytes((kind, comp)) + blob_id
        aad += ulen.to_bytes(4, "big")
        body = aead.decrypt(bytes(4) + (i + 1).to_bytes(8, "big"), pack[off : off + length], aad)
        plain = zstandard.ZstdDecompressor().decompress(body) if comp else body
        key = tree_key if kind == 1 else id_key
        assert hmac.digest(key, plain, hashlib.sha256) == blob_id and len(plain) == ulen
        plains.append(plain)
    assert [p.hex() for p in plains[:2]] == V["chunks"] and plains[2].hex() == V["tree"]["bytes"]
    tags = b"".join(pack[e - 16 : e] for e in _ends(header, count))
    expected_name = hashlib.sha256(pack[:85] + tags + pack[_ends(header, count)[-1] :]).hexdigest()
    assert expected_name == V["pack"]["name"]


def _ends(header: bytes, count: int) -> list[int]:
    rows = [struct.unpack(">BB32sIII", header[4 + 46 * i : 4 + 46 * (i + 1)]) for i in range(count)]
    return [r[3] + r[4] for r in rows]


def test_strongroom_reads_every_vector() -> None:
    data_key = SessionKey.derive(REPO, bytes.fromhex(V["data_secret"]["sid"]), Purpose.DATA,
                                 bytes.fromhex(V["data_secret"]["secret"]))  # fmt: skip
    keys = IndexKeys.derive(REPO, bytes.fromhex(V["index_secret"]["sid"]),
                            bytes.fromhex(V["index_secret"]["secret"]))  # fmt: skip
    pack = bytes.fromhex(V["pack"]["bytes"])
    entries = read_header(data_key, pack)
    assert pack_digest(pack, entries) == V["pack"]["name"]
    index = bytes.fromhex(V["index_file"]["bytes"])
    assert hashlib.sha256(index).hexdigest() == V["index_file"]["name"]
    assert decode_index(unseal(keys.session, KIND_INDEX, index)) == {V["pack"]["name"]: entries}
    snap = bytes.fromhex(V["snapshot_file"]["bytes"])
    body = unseal(data_key, KIND_SNAPSHOT, snap)
    assert body.hex() == V["snapshot_file"]["body"]
    assert Snapshot.decode(body, "x").tree.hex() == V["tree"]["id"]
    tree = bytes.fromhex(V["tree"]["bytes"])
    assert encode_tree(decode_tree(tree)) == tree
    tree_v2 = bytes.fromhex(V["tree_v2"]["bytes"])
    assert encode_tree(decode_tree(tree_v2)) == tree_v2
    assert keys.tree_id(tree_v2).hex() == V["tree_v2"]["id"]
    config = bytes.fromhex(V["config"])
    parsed = RepoConfig.parse_unverified(config)
    parsed.verify(config, keys)
    assert parsed.encode(keys) == config
    key_file = KeyFile.decode(bytes.fromhex(V["key_file"]["bytes"]))
    assert key_file.name() == V["key_file"]["name"]


@pytest.mark.skipif(
    ".".join(map(str, zstandard.ZSTD_VERSION)) != V["zstd_version"],
    reason="compressed bytes are pinned to the zstd version that made the vectors",
)
def test_generator_reproduces_the_file() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "generate_backup", Path(__file__).parents[1] / "vectors" / "generate_backup.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == V


def test_tree_v2_as_the_spec_says() -> None:
    """A tree v2 read by the rules of docs/formats.md: hard links carry count, inode, device,
    nodes their extended attributes; v1 is the same without them (and ignores them)."""
    raw = bytes.fromhex(V["tree_v2"]["bytes"])
    tree_key = bytes.fromhex(V["derived"]["tree_id_key"])
    assert hmac.digest(tree_key, raw, hashlib.sha256).hex() == V["tree_v2"]["id"]
    doc = json.loads(raw)
    assert json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() == raw
    assert doc["v"] == 2
    a, b, c, null = doc["nodes"]
    assert (a["type"], b["type"], b["link"]) == ("file", "hardlink", "home/a")
    for node in (a, b):
        assert (node["links"], node["inode"], node["device"]) == (2, 1_234_567, 2049)
    assert "links" not in c and "inode" not in c and "xattrs" not in a
    assert c["xattrs"] == {"user.empty": "", "user.mime_type": "dGV4dC9wbGFpbg=="}
    assert (null["type"], null["rdev"]) == ("chardev", 259)
    parsed = decode_tree(raw)
    assert [(n.links, n.inode, n.device) for n in parsed] == [
        (2, 1_234_567, 2049), (2, 1_234_567, 2049), (0, 0, 0), (0, 0, 0),
    ]  # fmt: skip
    assert (parsed[3].type, parsed[3].rdev) == ("chardev", 259)
    v1 = json.loads(bytes.fromhex(V["tree"]["bytes"]))
    assert v1["v"] == 1 and encode_tree(decode_tree(bytes.fromhex(V["tree"]["bytes"]))) == (
        bytes.fromhex(V["tree"]["bytes"])
    )
    as_v1 = json.dumps({"v": 1, "nodes": [a, b, c]}, sort_keys=True, separators=(",", ":"))
    assert [(n.links, n.inode, n.xattrs) for n in decode_tree(as_v1.encode())] == [(0, 0, {})] * 3
    with pytest.raises(CorruptError):  # devices and sockets are v2 only
        decode_tree(json.dumps({"v": 1, "nodes": [null]}).encode())
    assert decode_tree(raw)[2].xattrs == {"user.mime_type": b"text/plain", "user.empty": b""}
    bad: dict[str, Any]
    for bad in (
        {"links": 1}, {"links": -2}, {"inode": "1"}, {"links": True}, {"xattrs": {}},
        {"xattrs": {"user.a": "not base64!"}}, {"xattrs": {"": ""}}, {"xattrs": ["a"]},
        {"xattrs": {"user.a": 1}},
    ):  # fmt: skip
        nodes = [{**a, **bad}, b, c, null]
        broken = json.dumps({"v": 2, "nodes": nodes}, sort_keys=True, separators=(",", ":"))
        with pytest.raises(CorruptError):
            decode_tree(broken.encode())
    newer = json.dumps({**doc, "v": 3}, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(CorruptError, match="format version 3; this Strongroom reads versions"):
        decode_tree(newer)
    for version in (3, 0, True, "2"):
        other = json.dumps({**doc, "v": version}, sort_keys=True, separators=(",", ":"))
        with pytest.raises(CorruptError):
            decode_tree(other.encode())
