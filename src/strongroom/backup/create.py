"""One ``backup create`` run, from the lock to the snapshot, and how its result is shown.

Shared by the typer command (cli/backup_repo_create.py) and its fast start
(cli/backup_fast.py), so both write the same snapshot and print the same lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from strongroom.backup.archiver import Archiver
from strongroom.backup.filecache import FileCache, default_cache_dir
from strongroom.backup.locks import RepoLock
from strongroom.backup.repository import Repository
from strongroom.backup.snapshot import Snapshot


def create_snapshot(
    repo: Repository,
    paths: list[str],
    *,
    stdin: BinaryIO | None = None,
    stdin_name: str = "stdin",
    excludes: Iterable[str] = (),
    tags: Iterable[str] = (),
    hostname: str | None = None,
    retain_until: datetime | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    threads: int = 2,
    progress: Callable[[int], None] | None = None,
) -> tuple[Snapshot, list[str]]:
    """Back up ``paths`` (or ``stdin`` as one file) under a writer's lock.

    Returns the snapshot and the problems met on the way (files that could not be read).
    """
    with RepoLock(repo.store, exclusive=False):
        cache_file = None
        if use_cache and stdin is None:
            cache_file = (cache_dir or default_cache_dir()) / f"{repo.repo_id.hex()}.cache"
        with Archiver(
            repo,
            repo.load_index(),
            cache=FileCache(cache_file, repo.keys),
            threads=threads,
            excludes=excludes,
            progress=progress,
        ) as archiver:
            if stdin is not None:
                tree = archiver.backup_stdin(stdin, stdin_name)
                shown = [f"-:{stdin_name}"]
            else:
                tree = archiver.backup_paths(paths)
                shown = [os.path.abspath(p) for p in paths]
            snapshot = archiver.finish(
                tree,
                shown,
                name=stdin_name if stdin is not None else None,
                tags=tags,
                hostname=hostname,
                retain_until=retain_until,
            )
    return snapshot, archiver.summary.errors


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as JSON output."""
    return {
        "id": snapshot.id,
        "short_id": snapshot.id[:12],
        "time": snapshot.time,
        "hostname": snapshot.hostname,
        "username": snapshot.username,
        "paths": list(snapshot.paths),
        "name": snapshot.name,
        "tags": list(snapshot.tags),
        "tree": snapshot.tree.hex(),
        "retain_until": snapshot.retain_until,
        "summary": snapshot.summary,
    }


def saved_line(snapshot: Snapshot) -> str:
    """The line ``create`` prints (without ``--json``)."""
    s = snapshot.summary
    return (
        f"snapshot {snapshot.id[:12]} saved: {s['files_new']} new, {s['files_changed']} changed, "
        f"{s['files_unmodified']} unmodified files; {s['bytes_added']} bytes added "
        f"({s['stored_bytes']} stored)"
    )


def warn(problems: list[str]) -> None:
    """One ``warning:`` line on stderr per problem."""
    for problem in problems:
        sys.stderr.write(f"warning: {problem}\n")
