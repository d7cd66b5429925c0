"""``strongroom backup create``: back up paths or stdin as a new snapshot."""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.backup_repo import (
    DEFAULT_THREADS,
    NO_REPO,
    JsonOption,
    RepoChoice,
    ThreadsOption,
    open_repo,
    progress_bar,
    say,
    snapshot_json,
    with_kms_endpoint,
    with_repo,
)
from strongroom.cli.context import fail, print_json
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice


def _source_size(paths: list[str]) -> int:
    total = 0
    for path in paths:
        if os.path.isfile(path):
            total += os.path.getsize(path)
        for here, _, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(here, name)).st_size
    return total


# -- create --------------------------------------------------------------------------------


@with_repo
@with_kms_endpoint
def create_command(
    paths: Annotated[
        list[str], typer.Argument(metavar="PATH...", help="Files and directories, or - for stdin.")
    ],
    stdin_name: Annotated[
        str, typer.Option("--stdin-name", help="File name for stdin (-).")
    ] = "stdin",
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude", "-e", help="Skip names or paths matching this glob (repeatable)."
        ),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    retain_days: Annotated[
        int | None,
        typer.Option(
            "--retain-days",
            show_default=False,
            help="S3 Object Lock: keep this snapshot and every pack it uses for N days.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            show_default=False,
            help="File cache directory (default: ~/.cache/strongroom/backup).",
        ),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Read every file.")] = False,
    threads: ThreadsOption = DEFAULT_THREADS,
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Back up files and directories (or stdin) as a new snapshot."""
    from datetime import UTC, timedelta

    from strongroom.backup.archiver import Archiver
    from strongroom.backup.filecache import FileCache, default_cache_dir
    from strongroom.backup.locks import RepoLock

    stdin = paths == ["-"]
    if "-" in paths and not stdin:
        fail("- (stdin) cannot be mixed with paths")
    until = None
    if retain_days is not None and not (where.repo or "").startswith("s3://"):
        fail("--retain-days needs an S3 repository with Object Lock")
    if retain_days is not None:
        if retain_days < 1:
            fail("--retain-days must be at least 1")
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=retain_days)
    with open_repo(where, endpoint) as repo, RepoLock(repo.store, exclusive=False):
        cache_file = (
            None
            if no_cache or stdin
            else (cache_dir or default_cache_dir()) / f"{repo.repo_id.hex()}.cache"
        )
        cache = FileCache(cache_file, repo.keys)
        total = None if stdin or not sys.stderr.isatty() else _source_size(paths)
        with (
            progress_bar("backing up", total) as advance,
            Archiver(
                repo,
                repo.load_index(),
                cache=cache,
                threads=threads,
                excludes=exclude or (),
                progress=advance,
            ) as archiver,
        ):
            if stdin:
                tree = archiver.backup_stdin(sys.stdin.buffer, stdin_name)
                shown = [f"-:{stdin_name}"]
            else:
                tree = archiver.backup_paths(paths)
                shown = [os.path.abspath(p) for p in paths]
            snapshot = archiver.finish(
                tree, shown, name=stdin_name if stdin else None, tags=tag or (), retain_until=until
            )
        for problem in archiver.summary.errors:
            sys.stderr.write(f"warning: {problem}\n")
    if json_out:
        print_json({**snapshot_json(snapshot), "errors": archiver.summary.errors})
    else:
        s = snapshot.summary
        say(
            f"snapshot {snapshot.id[:12]} saved: {s['files_new']} new, "
            f"{s['files_changed']} changed, "
            f"{s['files_unmodified']} unmodified files; {s['bytes_added']} bytes added "
            f"({s['stored_bytes']} stored)"
        )
    if archiver.summary.errors:
        raise typer.Exit(3)
