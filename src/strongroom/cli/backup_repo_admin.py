"""``strongroom backup forget | prune | rotate-key``: the commands that delete or rewrap."""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.backup_repo import (
    NO_REPO,
    JsonOption,
    RepoChoice,
    open_repo,
    with_kms_endpoint,
    with_repo,
)
from strongroom.cli.context import print_json, stdout_console
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice


def _keep(name: str, what: str) -> object:
    return Annotated[int, typer.Option(f"--keep-{name}", help=f"Keep {what}.", min=0)]


DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would go; delete nothing.")]


@with_repo
@with_kms_endpoint
def forget_command(
    keep_last: _keep("last", "the last N snapshots") = 0,  # type: ignore[valid-type]
    keep_hourly: _keep("hourly", "the last snapshot of each of N hours") = 0,  # type: ignore[valid-type]
    keep_daily: _keep("daily", "the last snapshot of each of N days") = 0,  # type: ignore[valid-type]
    keep_weekly: _keep("weekly", "the last snapshot of each of N weeks") = 0,  # type: ignore[valid-type]
    keep_monthly: _keep("monthly", "the last snapshot of each of N months") = 0,  # type: ignore[valid-type]
    keep_yearly: _keep("yearly", "the last snapshot of each of N years") = 0,  # type: ignore[valid-type]
    dry_run: DryRun = False,
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Remove snapshots the --keep-* rules do not keep (per host and paths); then prune."""
    from strongroom.backup.maintenance import KeepPolicy, forget, plan_forget

    policy = KeepPolicy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    with open_repo(where, endpoint) as repo:
        keep, remove = plan_forget(repo.snapshots(), policy)
        report = forget(repo, remove, dry_run=dry_run)
    if json_out:
        print_json(
            {
                "kept": [s.id for s in keep],
                "removed": report.removed,
                "retained": report.retained,
                "dry_run": dry_run,
            }
        )
        return
    console = stdout_console()
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"kept {len(keep)} snapshots, {verb} {len(report.removed)}"
        + (f", {len(report.retained)} still under retention" if report.retained else "")
    )


@with_repo
@with_kms_endpoint
def prune_command(
    dry_run: DryRun = False,
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Delete packs no snapshot uses (never a pack under S3 Object Lock retention)."""
    from strongroom.backup.locks import RepoLock
    from strongroom.backup.maintenance import prune

    with open_repo(where, endpoint) as repo, RepoLock(repo.store, exclusive=True):
        report = prune(repo, dry_run=dry_run)
    if json_out:
        print_json(
            {
                "removed_packs": report.removed,
                "retained_packs": report.retained,
                "kept_packs": len(report.kept),
                "bytes_freed": report.bytes_freed,
                "dry_run": dry_run,
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    stdout_console().print(
        f"{verb} {len(report.removed)} packs ({report.bytes_freed} bytes); "
        f"kept {len(report.kept)}; {len(report.retained)} retained"
    )


@with_repo
@with_kms_endpoint
def rotate_key_command(
    new_key: Annotated[
        str | None,
        typer.Option(
            "--new-key",
            show_default=False,
            help="Rewrap under this KMS key (default: the same key's current version).",
        ),
    ] = None,
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Rewrap the repository's secrets (KMS ReEncrypt); no pack is rewritten."""
    from strongroom.backup.maintenance import rotate_keys

    with open_repo(where, endpoint) as repo:
        written = rotate_keys(repo, new_key)
    keys = sorted({k.kms_key for k in written})
    if json_out:
        print_json({"rewrapped": len(written), "kms_keys": keys})
    else:
        stdout_console().print(f"rewrapped {len(written)} secrets under {', '.join(keys)}")


def register(group: typer.Typer) -> None:
    """Add forget, prune and rotate-key to the ``backup`` group."""
    group.command(
        "forget",
        epilog="Example:  strongroom backup forget --repo /srv/bk --keep-daily 7 --keep-weekly 4",
    )(forget_command)
    group.command("prune", epilog="Example:  strongroom backup prune --repo /srv/bk")(prune_command)
    group.command(
        "rotate-key",
        epilog="Example:  strongroom backup rotate-key --repo /srv/bk --new-key alias/backups-2027",
    )(rotate_key_command)
