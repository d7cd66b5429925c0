"""Trees (format v2; v1 still read): one directory's entries, stored as a blob of type tree.

A tree is canonical JSON (UTF-8, sorted keys, no spaces)::

    {"v": 2, "nodes": [node, ...]}       nodes sorted by name, names unique

    node = {"name": str, "type": "file"|"dir"|"symlink"|"hardlink"|"fifo"
                            |"chardev"|"blockdev"|"socket"  (the last three: v2),
            "mode": int, "uid": int, "gid": int, "user": str, "group": str,
            "mtime_ns": int, "size": int,
            "content": [hex blob id | int zero-run length, ...]     (file)
            "subtree": hex tree id                                   (dir)
            "target": str                                            (symlink)
            "link": str  path of the first name, from the snapshot root (hardlink)
            "rdev": int  the device number, st_rdev (chardev, blockdev)
            "links": int, "inode": int, "device": int   (v2: file, hardlink; only when the
                         file had more than one name: its st_nlink, st_ino, st_dev)
            "xattrs": {name: base64 value}   (v2: extended attributes, when there are any)}

Version 1 is the same without ``links``, ``inode``, ``device`` and ``xattrs`` (readers of
v1 ignored members they did not know, so those are ignored in a v1 tree too) and without
device and socket nodes. Writers write v1 for a tree with no node that needs v2: a
directory without hard links, extended attributes or devices keeps the bytes, and so
the id, it had before v2.

Names that are not UTF-8 travel as ``surrogateescape`` strings turned into JSON escapes.
A zero run (an int in ``content``) is a hole of a sparse file: restore seeks over it.
The tree's id is HMAC-SHA256(tree-id key, bytes), and a snapshot names its root tree, so
a snapshot commits to every tree and chunk it reaches.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from strongroom.backup.errors import CorruptError

VERSION = 2
READABLE = frozenset({1, 2})
V1_TYPES = frozenset({"file", "dir", "symlink", "hardlink", "fifo"})
DEVICES = frozenset({"chardev", "blockdev"})
TYPES = V1_TYPES | DEVICES | {"socket"}
_CORRUPT = "A tree is corrupt."

Content = list[bytes | int]


@dataclass(slots=True)
class Node:
    """One entry of a directory."""

    name: str
    type: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    user: str = ""
    group: str = ""
    mtime_ns: int = 0
    size: int = 0
    content: Content = field(default_factory=list)
    subtree: bytes | None = None
    target: str | None = None
    link: str | None = None
    links: int = 0  # st_nlink of a file with more than one name (0: one name, or unknown)
    inode: int = 0  # with links: st_ino and st_dev when it was backed up
    device: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)  # extended attributes (v2)
    rdev: int = 0  # a device node's device number (v2)

    def needs_v2(self) -> bool:
        """Whether the node has what only tree format v2 holds."""
        return bool(self.links or self.xattrs) or self.type not in V1_TYPES

    def to_json(self) -> dict[str, Any]:
        """The node as canonical JSON values."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "user": self.user,
            "group": self.group,
            "mtime_ns": self.mtime_ns,
            "size": self.size,
        }
        if self.type == "file":
            out["content"] = [c if isinstance(c, int) else c.hex() for c in self.content]
        if self.subtree is not None:
            out["subtree"] = self.subtree.hex()
        if self.target is not None:
            out["target"] = self.target
        if self.link is not None:
            out["link"] = self.link
        if self.type in DEVICES:
            out["rdev"] = self.rdev
        if self.links:
            out.update(links=self.links, inode=self.inode, device=self.device)
        if self.xattrs:
            out["xattrs"] = {k: base64.b64encode(v).decode() for k, v in self.xattrs.items()}
        return out

    @classmethod
    def from_json(cls, raw: Any, version: int = VERSION) -> Node:
        """Parse and check one node of a tree of ``version``."""
        if not isinstance(raw, dict) or raw.get("type") not in (TYPES if version > 1 else V1_TYPES):
            raise CorruptError(_CORRUPT)
        name = raw.get("name")
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
            raise CorruptError(_CORRUPT)
        mode, uid, gid, mtime_ns, size = (_natural(raw.get(k)) for k in _INTS)
        node = cls(
            name,
            str(raw["type"]),
            mode,
            uid,
            gid,
            _text(raw.get("user", "")),
            _text(raw.get("group", "")),
            mtime_ns,
            size,
        )
        try:
            if node.type == "file":
                node.content = [_content(c) for c in raw["content"]]
            elif node.type == "dir":
                node.subtree = _blob_id(raw["subtree"])
            elif node.type == "symlink":
                node.target = _text(raw["target"])
            elif node.type == "hardlink":
                node.link = _text(raw["link"])
            elif node.type in DEVICES:
                node.rdev = _natural(raw["rdev"])
            if version >= 2 and "links" in raw and node.type in ("file", "hardlink"):
                node.links, node.inode, node.device = (_natural(raw[k]) for k in _LINKS)
                if node.links < 2:
                    raise CorruptError(_CORRUPT)
            if version >= 2 and "xattrs" in raw:
                node.xattrs = _xattrs(raw["xattrs"])
        except (KeyError, TypeError) as exc:
            raise CorruptError(_CORRUPT) from exc
        return node


_INTS = ("mode", "uid", "gid", "mtime_ns", "size")
_LINKS = ("links", "inode", "device")


def _natural(raw: Any) -> int:
    if type(raw) is not int or raw < 0:
        raise CorruptError(_CORRUPT)
    return raw


def _xattrs(raw: Any) -> dict[str, bytes]:
    if not isinstance(raw, dict) or not raw:
        raise CorruptError(_CORRUPT)
    out: dict[str, bytes] = {}
    for name, value in raw.items():
        if not name or "\0" in name or not isinstance(value, str):
            raise CorruptError(_CORRUPT)
        try:
            out[name] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CorruptError(_CORRUPT) from exc
    return out


def _blob_id(raw: Any) -> bytes:
    if not isinstance(raw, str) or len(raw) != 64:
        raise CorruptError(_CORRUPT)
    try:
        return bytes.fromhex(raw)
    except ValueError as exc:
        raise CorruptError(_CORRUPT) from exc


def _content(raw: Any) -> bytes | int:
    if type(raw) is int:
        if raw <= 0:
            raise CorruptError(_CORRUPT)
        return raw
    return _blob_id(raw)


def _text(raw: Any) -> str:
    if not isinstance(raw, str) or "\0" in raw:
        raise CorruptError(_CORRUPT)
    return raw


def encode_tree(nodes: list[Node]) -> bytes:
    """The canonical bytes of a tree (nodes sorted by name; names must be unique)."""
    ordered = sorted(nodes, key=lambda n: n.name)
    if len({n.name for n in ordered}) != len(ordered):
        raise ValueError("duplicate names in a tree")
    # the lowest version that holds the nodes: a tree without hard links keeps its v1 bytes
    # (and id), so it deduplicates against trees written before v2 and old readers read it
    version = VERSION if any(n.needs_v2() for n in ordered) else 1
    doc = {"v": version, "nodes": [n.to_json() for n in ordered]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8", "surrogateescape")


def decode_tree(data: bytes) -> list[Node]:
    """Parse a tree; :class:`CorruptError` unless it is a canonical v1 or v2 tree."""
    try:
        doc = json.loads(data.decode("utf-8", "surrogateescape"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptError(_CORRUPT) from exc
    version = doc.get("v") if isinstance(doc, dict) else None
    if type(version) is int and version > VERSION:  # its id checked: a newer writer made it
        raise CorruptError(
            f"A tree has format version {version}; this Strongroom reads versions "
            f"{min(READABLE)} to {VERSION}: upgrade it to read this snapshot."
        )
    if (
        not isinstance(doc, dict)
        or doc.get("v") not in READABLE
        or type(doc["v"]) is not int
        or not isinstance(doc.get("nodes"), list)
    ):
        raise CorruptError(_CORRUPT)
    nodes = [Node.from_json(n, doc["v"]) for n in doc["nodes"]]
    names = [n.name for n in nodes]
    if names != sorted(set(names)):
        raise CorruptError(_CORRUPT)
    return nodes
