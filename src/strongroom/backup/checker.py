"""``backup check [--read-data]``: every file verified, every reference resolved.

Without ``--read-data``: the config MAC, every key file, index file (name = SHA-256,
sealed under the index secret) and snapshot (name = SHA-256, sealed), every tree reached
from a snapshot (decrypted and checked against its id), every chunk a tree names present
in the index, every indexed pack present with a plausible size. With ``--read-data``,
every pack is read whole: its SHA-256 must be its name, its header must match the index,
and each blob must decrypt, decompress and hash to its id.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from strongroom.backup.errors import CorruptError
from strongroom.backup.index import Index
from strongroom.backup.pack import PackEntry, PackPrefix, pack_digest, read_header
from strongroom.backup.repository import Repository, pack_name
from strongroom.errors import StrongroomError


@dataclass(slots=True)
class CheckReport:
    """What ``check`` found: errors fail the check; warnings (unused packs) do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    snapshots: int = 0
    trees: int = 0
    packs: int = 0
    blobs: int = 0
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        """No errors."""
        return not self.errors


class Checker:
    """Checks one open repository."""

    def __init__(
        self, repo: Repository, *, threads: int = 2, progress: Callable[[int], None] | None = None
    ) -> None:
        self.repo = repo
        self.threads = max(1, threads)
        self.report = CheckReport()
        self._progress = progress or (lambda n: None)

    def run(self, *, read_data: bool = False) -> CheckReport:
        """Run the checks; the report (never raises for a corrupt repository)."""
        report = self.report
        try:
            self.repo.key_files(refresh=True)
        except StrongroomError as exc:
            report.errors.append(f"key files: {exc}")
        index = Index()
        indexed: dict[str, list[PackEntry]] = {}
        for name in self.repo.index_names():
            try:
                for pack, entries in self.repo.read_index_file(name).items():
                    index.add_pack(pack, entries)
                    indexed[pack] = entries
            except StrongroomError as exc:
                report.errors.append(f"{name}: {exc}")
        stored = {n.rsplit("/", 1)[-1] for n in self.repo.store.list("data/")}
        for pack in sorted(set(indexed) - stored):
            report.errors.append(f"pack {pack[:12]} is in the index but missing")
        for pack in sorted(stored - set(indexed)):
            report.warnings.append(f"pack {pack[:12]} is not in any index (prune removes it)")
        self._check_snapshots(index)
        report.packs = len(stored)
        if read_data:
            self._read_packs(sorted(stored), indexed)
        return report

    def _check_snapshots(self, index: Index) -> None:
        seen: set[bytes] = set()
        loaded = []
        for snapshot_id in self.repo.snapshot_ids():
            try:
                snapshot = self.repo.load_snapshot(snapshot_id)
            except StrongroomError as exc:
                self.report.errors.append(f"snapshot {snapshot_id[:12]}: {exc}")
                continue
            loaded.append(snapshot)
            self.report.snapshots += 1
            self._check_tree(index, snapshot.tree, f"snapshot {snapshot_id[:12]}", seen)
        for missing in self.repo.missing_snapshots(loaded):
            self.report.errors.append(f"snapshot {missing[:12]} was removed without forget")

    def _check_tree(self, index: Index, tree_id: bytes, where: str, seen: set[bytes]) -> None:
        if tree_id in seen:
            return
        seen.add(tree_id)
        try:
            nodes = self.repo.load_tree(index, tree_id)
        except StrongroomError as exc:
            self.report.errors.append(f"{where}: tree {tree_id.hex()[:12]}: {exc}")
            return
        self.report.trees += 1
        for node in nodes:
            here = f"{where}/{node.name}"
            if node.subtree is not None:
                self._check_tree(index, node.subtree, here, seen)
            for item in node.content:
                if isinstance(item, bytes) and item not in index:
                    self.report.errors.append(f"{here}: chunk {item.hex()[:12]} is missing")

    def _read_packs(self, packs: list[str], indexed: dict[str, list[PackEntry]]) -> None:
        with ThreadPoolExecutor(self.threads, thread_name_prefix="check") as pool:
            for problem in pool.map(lambda p: self._read_pack(p, indexed.get(p)), packs):
                if problem:
                    self.report.errors.append(problem)

    def _read_pack(self, pack: str, expected: list[PackEntry] | None) -> str | None:
        try:
            data = self.repo.store.get(pack_name(pack))
            self._progress(len(data))
            prefix = PackPrefix.parse(data)
            entries = read_header(self.repo.session_key(prefix.sid), data)
            if pack_digest(data, entries) != pack:
                raise CorruptError("its digest is not its name")
            if expected is not None and sorted(expected, key=lambda e: e.index) != entries:
                raise CorruptError("its header does not match the index")
            open_one = self.repo.blob_opener(prefix)
            view = memoryview(data)
            for entry in entries:
                open_one(entry, view[entry.offset : entry.offset + entry.length])
            self.report.blobs += len(entries)
            self.report.bytes_read += len(data)
            return None
        except StrongroomError as exc:
            return f"pack {pack[:12]}: {exc}"
