"""``strongroom backup restore | diff | check``: reading a repository (needs data secrets)."""

from __future__ import annotations

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
from strongroom.cli.context import print_json, stdout_console
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice


@with_repo
@with_kms_endpoint
def restore_command(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique id prefix, or latest.")],
    target: Annotated[Path, typer.Argument(help="Directory to restore into (new or empty).")],
    path: Annotated[
        str | None,
        typer.Option(
            "--path",
            show_default=False,
            help="Restore only this file or subtree (a path inside the snapshot).",
        ),
    ] = None,
    threads: ThreadsOption = DEFAULT_THREADS,
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Restore a snapshot (or one path of it); only verified data is written."""
    from strongroom.backup.restorer import Restorer

    with open_repo(where, endpoint) as repo:
        chosen = repo.find_snapshot(snapshot)
        total = chosen.summary.get("total_bytes")
        with progress_bar("restoring", total if path is None else None) as advance:
            restorer = Restorer(repo, repo.load_index(), threads=threads, progress=advance)
            stats = restorer.restore(chosen, target, path)
    result = {
        "snapshot": chosen.id,
        "target": str(target),
        "files": stats.files,
        "dirs": stats.dirs,
        "links": stats.links,
        "bytes": stats.bytes,
        "errors": stats.errors,
    }
    if json_out:
        print_json(result)
    else:
        say(f"restored {stats.files} files ({stats.bytes} bytes) of {chosen.id[:12]} to {target}")
    if stats.errors:
        raise typer.Exit(3)


@with_repo
@with_kms_endpoint
def diff_command(
    old: Annotated[str, typer.Argument(help="The earlier snapshot (id, prefix or latest).")],
    new: Annotated[str, typer.Argument(help="The later snapshot (id, prefix or latest).")],
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Show paths added (+), removed (-) and modified (M) between two snapshots."""
    from strongroom.backup.diff import diff_trees

    with open_repo(where, endpoint) as repo:
        a, b = repo.find_snapshot(old), repo.find_snapshot(new)
        found = diff_trees(repo, repo.load_index(), a.tree, b.tree)
    if json_out:
        print_json(
            {
                "old": a.id,
                "new": b.id,
                "added": found.added,
                "removed": found.removed,
                "modified": found.modified,
            }
        )
        return
    console = stdout_console()
    rows = [("+", p) for p in found.added] + [("-", p) for p in found.removed]
    rows += [("M", p) for p in found.modified]
    for mark, p in sorted(rows, key=lambda r: r[1]):
        console.print(f"{mark}  {p}", markup=False)


@with_repo
@with_kms_endpoint
def check_command(
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Also read and verify every pack and blob.")
    ] = False,
    threads: ThreadsOption = DEFAULT_THREADS,
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Verify the repository: exit 0 if sound, 1 if anything is wrong."""
    from strongroom.backup.checker import Checker

    with open_repo(where, endpoint) as repo:
        total = sum(repo.store.size(n) for n in repo.store.list("data/")) if read_data else None
        with progress_bar("checking", total, read_data) as advance:
            report = Checker(repo, threads=threads, progress=advance).run(read_data=read_data)
    if json_out:
        print_json(
            {
                "ok": report.ok,
                "errors": report.errors,
                "warnings": report.warnings,
                "snapshots": report.snapshots,
                "trees": report.trees,
                "packs": report.packs,
                "blobs_read": report.blobs,
                "bytes_read": report.bytes_read,
            }
        )
    else:
        for line in report.errors:
            say(f"error: {line}")
        for line in report.warnings:
            say(f"warning: {line}")
        verdict = "no errors" if report.ok else f"{len(report.errors)} errors"
        say(
            f"checked {report.snapshots} snapshots, {report.trees} trees, "
            f"{report.packs} packs: {verdict}"
        )
    if not report.ok:
        raise typer.Exit(1)


def register(group: typer.Typer) -> None:
    """Add restore, diff and check to the ``backup`` group."""
    group.command(
        "restore",
        epilog="Examples:  strongroom backup restore --repo /srv/bk latest "
        "/tmp/r   |   strongroom backup restore --repo /srv/bk 3fa2 /tmp/r "
        "--path home/ann/notes.txt",
    )(restore_command)
    group.command("diff", epilog="Example:  strongroom backup diff --repo /srv/bk 3fa2 latest")(
        diff_command
    )
    group.command("check", epilog="Example:  strongroom backup check --repo /srv/bk --read-data")(
        check_command
    )
