"""``backup diff``: what changed between two snapshots, path by path (trees compared by id)."""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.backup.index import Index
from strongroom.backup.repository import Repository
from strongroom.backup.tree import Node


@dataclass(slots=True)
class Difference:
    """Paths added, removed and modified (content, type or metadata) from one to the other."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)


def _signature(node: Node) -> tuple[object, ...]:
    # extended attributes count as metadata; a hard link's count does not (it changes with
    # names elsewhere, which show up as added or removed themselves)
    return (node.type, node.mode, node.uid, node.gid, node.mtime_ns, node.size,
            tuple(node.content), node.target, node.link, sorted(node.xattrs.items()))  # fmt: skip


def diff_trees(repo: Repository, index: Index, old: bytes | None, new: bytes | None,
               path: str = "", out: Difference | None = None) -> Difference:  # fmt: skip
    """Compare two trees (``None``: absent); equal ids are skipped without reading."""
    out = Difference() if out is None else out
    if old == new:
        return out
    before = {n.name: n for n in repo.load_tree(index, old)} if old else {}
    after = {n.name: n for n in repo.load_tree(index, new)} if new else {}
    for name in sorted(before.keys() | after.keys()):
        here = f"{path}/{name}" if path else name
        a, b = before.get(name), after.get(name)
        if a is None:
            out.added.append(here)
        elif b is None:
            out.removed.append(here)
        elif _signature(a) != _signature(b):
            out.modified.append(here)
        subtree_a = a.subtree if a is not None and a.type == "dir" else None
        subtree_b = b.subtree if b is not None and b.type == "dir" else None
        if subtree_a is not None or subtree_b is not None:
            diff_trees(repo, index, subtree_a, subtree_b, here, out)
    return out
