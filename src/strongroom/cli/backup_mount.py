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
    json_out: JsonOption = False,
    where: RepoChoice = NO_REPO,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Mount the snapshots read-only (FUSE): ids/, snapshots/, hosts/, tags/ as restic mount."""
    from strongroom.backup.fuse import check_mountpoint, fuse_problem, mount
    from strongroom.backup.mountfs import SnapshotFS

    with cli_errors():
        problem = fuse_problem()  # before asking the KMS anything
        if problem is not None:
            from strongroom.backup.errors import FuseUnavailableError

            raise FuseUnavailableError(problem)
        path = check_mountpoint(mountpoint)
    with open_repo(where, endpoint) as repo:
        fs: SnapshotFS | None = None

        def mounted() -> None:
            assert fs is not None
            count = len(fs.readdir("/ids")) - 2
            if json_out:
                print_json({"mountpoint": path, "snapshots": count, "mounted": True})
            else:
                say(f"mounted {count} snapshots at {path}; unmount with: fusermount3 -u {path}")
            sys.stdout.flush()

        fs = SnapshotFS(repo, on_mounted=mounted)
        mount(fs, path, allow_other=allow_other)
    if not json_out:
        say(f"unmounted {path}")


def register(group: typer.Typer) -> None:
    """Add ``mount`` to the ``backup`` group."""
    group.command(
        "mount",
        epilog="Every byte read is decrypted and verified first (a damaged chunk reads as an "
        "I/O error). Ends on fusermount3 -u MOUNTPOINT, Ctrl-C or SIGTERM.  Example:  "
        "strongroom backup mount --repo /srv/bk /mnt/bk &   ls /mnt/bk/hosts/web1/latest/",
    )(mount_command)
