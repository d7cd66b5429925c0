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
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            "-H",
            show_default=False,
            help="The host to file the snapshot under (default: this machine's name).",
        ),
    ] = None,
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

    from strongroom.backup.create import create_snapshot, saved_line, snapshot_json, warn

    if host is not None and (not host or "\0" in host):
        fail("--host must be a non-empty name")
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
    total = None if stdin or not sys.stderr.isatty() else _source_size(paths)
    with open_repo(where, endpoint) as repo, progress_bar("backing up", total) as advance:
        snapshot, problems = create_snapshot(
            repo,
            paths,
            stdin=sys.stdin.buffer if stdin else None,
            stdin_name=stdin_name,
            excludes=exclude or (),
            tags=tag or (),
            hostname=host,
            retain_until=until,
            cache_dir=cache_dir,
            use_cache=not no_cache,
            threads=threads,
            progress=advance,
        )
    warn(problems)
    if json_out:
        print_json({**snapshot_json(snapshot), "errors": problems})
    else:
        say(saved_line(snapshot))
    if problems:
        raise typer.Exit(3)
