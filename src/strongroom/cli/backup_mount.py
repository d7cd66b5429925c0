"""``strongroom backup mount``: browse the snapshots as a read-only FUSE filesystem."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from strongroom.cli.backup_repo import (
    NO_REPO,
    JsonOption,
    RepoChoice,
    open_repo,
    say,
    with_kms_endpoint,
    with_repo,
)
from strongroom.cli.context import cli_errors, print_json
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice


@with_repo
@with_kms_endpoint
def mount_command(
    mountpoint: Annotated[
        str, typer.Argument(metavar="MOUNTPOINT", help="An empty directory to mount on.")
    ],
    allow_other: Annotated[
        bool,
        typer.Option(
            "--allow-other",
            help="Let other users in too (the snapshot's modes and owners still apply; "
            "needs root or user_allow_other in /etc/fuse.conf).",
        ),
    ] = False,
    no_default_permissions: Annotated[
        bool,
        typer.Option(
            "--no-default-permissions",
            help="Do not check the snapshot's modes and owners: whoever reaches the mount "
            "(with --allow-other: every user) reads every file.",
        ),
    ] = False,
    owner_root: Annotated[
        bool, typer.Option("--owner-root", help="Show every file and directory as root's.")
    ] = False,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host", "-H", show_default=False, help="Only this host's snapshots (repeatable)."
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            show_default=False,
            help="Only snapshots with these tags: a,b needs both; repeat for either.",
        ),
    ] = None,
    path: Annotated[
        list[str] | None,
        typer.Option(
            "--path",
            show_default=False,
            help="Only snapshots that include this absolute path (repeatable: all of them).",
        ),
    ] = None,
    time_template: Annotated[
        str | None,
        typer.Option(
            "--time-template",
            show_default=False,
            help="strftime format of the snapshots' time names, in local time (TZ), e.g. "
            "%Y-%m-%d_%H-%M-%S. Default: restic's RFC 3339, 2026-12-06T03:04:05+01:00 "
            "(Z for UTC).",
        ),
    ] = None,
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Mount the snapshots read-only (FUSE): ids/, snapshots/, hosts/, tags/ as restic mount."""
    from strongroom.backup.fuse import check_mountpoint, fuse_problem, mount
    from strongroom.backup.mountfs import SnapshotFS
    from strongroom.backup.snapshotfilter import SnapshotFilter
    from strongroom.backup.timenames import TimeTemplate

    with cli_errors():
        chosen = SnapshotFilter.of(host or (), tag or (), path or ())
        times = TimeTemplate.of(time_template)
        problem = fuse_problem()  # before asking the KMS anything
        if problem is not None:
            from strongroom.backup.errors import FuseUnavailableError

            raise FuseUnavailableError(problem)
        where_mounted = check_mountpoint(mountpoint)
    with open_repo(where, endpoint) as repo:
        fs: SnapshotFS | None = None

        def mounted() -> None:
            assert fs is not None
            count = len(fs.readdir("/ids")) - 2
            if json_out:
                print_json({"mountpoint": where_mounted, "snapshots": count, "mounted": True})
            else:
                say(
                    f"mounted {count} snapshots at {where_mounted}; "
                    f"unmount with: fusermount3 -u {where_mounted}"
                )
            sys.stdout.flush()

        fs = SnapshotFS(
            repo, on_mounted=mounted, select=chosen.matches, owner_root=owner_root, times=times
        )
        mount(
            fs,
            where_mounted,
            allow_other=allow_other,
            default_permissions=not no_default_permissions,
        )
    if not json_out:
        say(f"unmounted {where_mounted}")


def register(group: typer.Typer) -> None:
    """Add ``mount`` to the ``backup`` group."""
    group.command(
        "mount",
        epilog="Every byte read is decrypted and verified first (a damaged chunk reads as an "
        "I/O error). Ends on fusermount3 -u MOUNTPOINT, Ctrl-C or SIGTERM.  Example:  "
        "strongroom backup mount --repo /srv/bk /mnt/bk &   ls /mnt/bk/hosts/web1/latest/",
    )(mount_command)
