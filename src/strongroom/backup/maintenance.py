"""``forget``, ``prune`` and ``rotate-key``: the only operations that delete files.

- :func:`plan_forget` keeps snapshots by a policy (last N, hourly/daily/weekly/monthly/
  yearly buckets, per host and paths, as restic does); :func:`forget` deletes the rest,
  except those S3 Object Lock still retains.
- :func:`prune` (under the exclusive lock) deletes packs no snapshot uses (and packs no
  index names: leftovers of killed runs), in a crash-safe order: a new index without them
  first, then the old index files, then the packs. A pack with any used blob is kept
  whole (v1 never rewrites a pack); a retained pack is never touched.
- :func:`rotate_keys` rewraps every secret with ``ReEncrypt`` under the KMS key's current
  version or another key; no pack, index or snapshot changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from strongroom.backup.config import KeyFile
from strongroom.backup.errors import ObjectLockedError
from strongroom.backup.index import Index
from strongroom.backup.pack import PackEntry
from strongroom.backup.repository import Repository, now_rfc3339, pack_name, parse_time
from strongroom.backup.snapshot import Snapshot
from strongroom.errors import NotFoundError, ValidationError

BUCKETS: dict[str, Callable[[datetime], str]] = {
    "hourly": lambda t: t.strftime("%Y-%m-%d %H"),
    "daily": lambda t: t.strftime("%Y-%m-%d"),
    "weekly": lambda t: f"{t.isocalendar()[0]:04d}-{t.isocalendar()[1]:02d}",
    "monthly": lambda t: t.strftime("%Y-%m"),
    "yearly": lambda t: t.strftime("%Y"),
}


@dataclass(frozen=True, slots=True)
class KeepPolicy:
    """How many snapshots to keep: the last N and one per hour/day/week/month/year."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def empty(self) -> bool:
        """No rule given (forget would then remove everything: refused)."""
        return not any((self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly))


def plan_forget(
    snapshots: list[Snapshot], policy: KeepPolicy
) -> tuple[list[Snapshot], list[Snapshot]]:
    """``(keep, remove)``, each group (host, paths, name) judged on its own."""
    if policy.empty():
        raise ValidationError("Give at least one --keep-* rule.")
    groups: dict[tuple[object, ...], list[Snapshot]] = {}
    for s in snapshots:
        groups.setdefault((s.hostname, s.paths, s.name), []).append(s)
    keep: list[Snapshot] = []
    remove: list[Snapshot] = []
    for group in groups.values():
        group.sort(key=lambda s: s.time, reverse=True)
        counts = {"last": policy.last, **{b: getattr(policy, b) for b in BUCKETS}}
        last_bucket: dict[str, str] = {}
        for i, s in enumerate(group):
            kept = i < policy.last
            when = parse_time(s.time)
            for name, bucket_of in BUCKETS.items():
                bucket = bucket_of(when)
                if counts[name] > 0 and last_bucket.get(name) != bucket:
                    last_bucket[name] = bucket
                    counts[name] -= 1
                    kept = True
            (keep if kept else remove).append(s)
    return keep, remove


@dataclass(slots=True)
class MaintenanceReport:
    """What forget or prune did."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    retained: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def forget(repo: Repository, remove: list[Snapshot], *, dry_run: bool = False) -> MaintenanceReport:
    """Delete ``remove``'s snapshot files (retained ones are skipped and reported)."""
    report = MaintenanceReport()
    for s in remove:
        name = f"snapshots/{s.id}"
        if repo.store.retained_until(name) is not None:
            report.retained.append(s.id)
            continue
        if not dry_run:
            repo.write_tombstone(s.id)  # first: a crash leaves a snapshot that is forgotten
            try:
                repo.store.delete(name)
            except ObjectLockedError:
                report.retained.append(s.id)
                continue
        report.removed.append(s.id)
    return report


def used_blobs(repo: Repository, index: Index) -> set[bytes]:
    """Every tree and chunk any snapshot reaches."""
    used: set[bytes] = set()

    def visit(tree_id: bytes) -> None:
        if tree_id in used:
            return
        used.add(tree_id)
        for node in repo.load_tree(index, tree_id):
            used.update(c for c in node.content if isinstance(c, bytes))
            if node.subtree is not None:
                visit(node.subtree)

    for snapshot in repo.snapshots():
        visit(snapshot.tree)
    return used


def prune(repo: Repository, *, dry_run: bool = False) -> MaintenanceReport:
    """Delete unused and unindexed packs (call under the exclusive lock)."""
    report = MaintenanceReport()
    index_names = repo.index_names()
    indexed: dict[str, list[PackEntry]] = {}
    for name in index_names:
        indexed.update(repo.read_index_file(name))
    index = Index()
    for pack, entries in indexed.items():
        index.add_pack(pack, entries)
    used = used_blobs(repo, index)
    stored = {n.rsplit("/", 1)[-1] for n in repo.store.list("data/")}
    dead = {p for p, rows in indexed.items() if not any(e.blob_id in used for e in rows)}
    dead |= stored - set(indexed)
    deletable = []
    for pack in sorted(dead & stored):
        if repo.store.retained_until(pack_name(pack)) is not None:
            report.retained.append(pack)
        else:
            deletable.append(pack)
    report.kept = sorted(stored - set(deletable))
    if dry_run or not deletable:
        report.removed = deletable
        return report
    live = {p: rows for p, rows in indexed.items() if p not in deletable and p in stored}
    new_name = repo.save_index(live) if live else None
    kept_index: set[str] = set()
    for name in index_names:
        if name == new_name:
            continue
        try:
            repo.store.delete(name)
        except ObjectLockedError:
            # a retained index file stays, so the packs it names stay too (or check would
            # find them missing); they go with a prune after its retention
            kept_index.update(repo.read_index_file(name))
    for pack in [p for p in deletable if p in kept_index]:
        deletable.remove(pack)
        report.retained.append(pack)
    for pack in deletable:
        try:
            size = repo.store.size(pack_name(pack))
            repo.store.delete(pack_name(pack))
        except ObjectLockedError:
            report.retained.append(pack)
            continue
        except NotFoundError:
            continue
        report.removed.append(pack)
        report.bytes_freed += size
    return report


def rotate_keys(repo: Repository, destination: str | None = None) -> list[KeyFile]:
    """Rewrap every secret under ``destination`` (default: each one's own key, current version)."""
    written: list[KeyFile] = []
    for sid, files in repo.key_files(refresh=True).items():
        current = files[0]
        target = destination or current.kms_key
        rewrapped = repo.kms.re_encrypt_data_key(
            current.wrapped, current.context, target, source_key_id=current.kms_key
        )
        new = KeyFile(repo.repo_id, sid, current.purpose, rewrapped.key_arn, rewrapped.wrapped,
                      now_rfc3339())  # fmt: skip
        repo.store.put(f"keys/{new.name()}", new.encode())
        written.append(new)
        for old in files:
            # a retained key file stays, wrapped under the old key version
            with contextlib.suppress(ObjectLockedError):
                repo.store.delete(f"keys/{old.name()}")
    repo.key_files(refresh=True)
    return written
