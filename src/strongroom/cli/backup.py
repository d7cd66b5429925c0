"""``strongroom admin backup-keystore|restore-keystore``: whole-store backups under the root.

The backup file is written atomically (a private temporary file in the same directory,
fsync, rename, fsync of the directory), so a crash leaves either no backup or a whole
one. On a terminal, both commands show a progress bar on stderr.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from strongroom.cli.context import (
    DataDirOption,
    JsonOption,
    cli_errors,
    data_dir_of,
    open_root_for,
    open_store_for,
    print_json,
    stderr_console,
    stdout_console,
)
from strongroom.cli.init import StoreOption, initialise, remove_new_entries
from strongroom.cli.keystore import backup_store, count_records, open_backup, restore_store
from strongroom.config import CONFIG_FILE
from strongroom.errors import ValidationError
from strongroom.files import fsync_dir
from strongroom.kms.keystore_backup import BackupSummary
from strongroom.rootkey import MASTER_KEY_FILE, open_root_of_trust


@contextmanager
def atomic_output(path: Path, overwrite: bool) -> Iterator[BinaryIO]:
    """Yield a file that becomes ``path`` (mode 0600) only when the block ends cleanly."""
    path = Path(os.path.abspath(path))
    if path.exists() and not overwrite:
        raise ValidationError(f"{path} exists already (use --force to replace it)")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # refuses to replace a file that appeared meanwhile
            tmp.unlink()
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _progress_bar(enabled: bool) -> Progress | None:
    if not enabled:
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=True,
    )


def _summary_json(summary: BackupSummary, path: Path) -> dict[str, object]:
    return {
        "File": str(path),
        "BackupId": summary.backup_id.hex(),
        "Records": summary.records,
        "AuditEvents": summary.audit_events,
        "Bytes": path.stat().st_size,
    }


def backup_command(
    out: Annotated[Path, typer.Option("--out", help="Backup file to write.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Back up every key store record and the audit log, encrypted under the root of trust."""
    with cli_errors():
        directory = data_dir_of(data_dir)
        store = open_store_for(directory)
        try:
            root = open_root_for(directory)
            try:
                bar = _progress_bar(stderr_console().is_terminal)
                with bar or nullcontext(), atomic_output(out, force) as sink:
                    report = _backup_reporter(bar, count_records(store) if bar else None)
                    summary = backup_store(store, root, sink, report)
            finally:
                root.close()
        finally:
            store.close()
        info = _summary_json(summary, Path(os.path.abspath(out)))
    if json_output:
        print_json(info)
    else:
        stdout_console().print(
            f"Backed up {summary.records} records and {summary.audit_events} audit events "
            f"to {info['File']} ({info['Bytes']} bytes, backup id {info['BackupId']})"
        )


def _backup_reporter(bar: Progress | None, total: int | None) -> Callable[[str, int], None]:
    if bar is None:
        return lambda stage, n: None
    tasks = {
        "records": bar.add_task("records", total=total),
        "audit": bar.add_task("audit events", total=None),
    }
    return lambda stage, n: bar.advance(tasks[stage], n)


def restore_command(
    source: Annotated[
        Path, typer.Option("--in", help="Backup file to restore.", show_default=False)
    ],
    root_of_trust: Annotated[
        str | None,
        typer.Option(
            "--root-of-trust",
            help="For a fresh data directory: 'local' (master.key must be copied in "
            "first) or the PKCS#11 URI of the HSM key the backup was made under.",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Restore a keystore backup into an empty store (all or nothing)."""
    with cli_errors():
        directory = Path(os.path.abspath(data_dir_of(data_dir)))
        summary = restore_into(
            directory, source, root_of_trust, store, stderr_console().is_terminal
        )
    info = {
        "DataDir": str(directory),
        "BackupId": summary.backup_id.hex(),
        "Records": summary.records,
        "AuditEvents": summary.audit_events,
    }
    if json_output:
        print_json(info)
    else:
        stdout_console().print(
            f"Restored {summary.records} records and {summary.audit_events} audit events "
            f"into {directory}"
        )


def restore_into(
    directory: Path,
    backup_file: Path,
    root_spec: str | None = None,
    store_url: str | None = None,
    show_progress: bool = False,
) -> BackupSummary:
    """Restore ``backup_file`` into ``directory``, initialising it first if it is fresh.

    A fresh directory (no ``config.json``) is set up like ``strongroom init`` except that
    the root of trust must exist already: the copied ``master.key``, or the HSM key. If
    the restore fails, whatever this call set up is removed again.
    """
    with open(backup_file, "rb", buffering=1 << 20) as source:
        fresh = not (directory / CONFIG_FILE).exists()
        before = {p.name for p in directory.iterdir()} if directory.is_dir() else None
        if fresh:
            _check_fresh_root(directory, root_spec or "local", source)
            initialise(directory, root_spec or "local", store_url, reuse_root=True)
        elif root_spec is not None or store_url is not None:
            raise ValidationError(
                f"{directory} is initialised already: its {CONFIG_FILE} names the store and "
                "root of trust (drop --root-of-trust and --store)"
            )
        try:
            return _restore(directory, source, show_progress)
        except BaseException:
            if fresh:
                remove_new_entries(directory, before or set(), created_dir=before is None)
            raise


def _check_fresh_root(directory: Path, spec: str, source: BinaryIO) -> None:
    """Fail early, before setting anything up, if ``spec`` cannot open the backup."""
    if spec == "local" and not (directory / MASTER_KEY_FILE).exists():
        raise ValidationError(
            f"copy the {MASTER_KEY_FILE} the backup was made under into {directory} first "
            "(or name the HSM key with --root-of-trust)"
        )
    root = open_root_of_trust(spec, directory, create=False)
    try:
        open_backup(root, source)
    finally:
        root.close()
    source.seek(0)


def _restore(directory: Path, source: BinaryIO, show_progress: bool) -> BackupSummary:
    size = os.fstat(source.fileno()).st_size
    store = open_store_for(directory)
    try:
        root = open_root_for(directory)
        try:
            bar = _progress_bar(show_progress)
            if bar is None:
                return restore_store(store, root, source)
            with bar:
                task = bar.add_task("restoring (bytes)", total=size)
                return restore_store(
                    store, root, source, lambda stage, n: bar.update(task, completed=source.tell())
                )
        finally:
            root.close()
    finally:
        store.close()


def register(admin: typer.Typer) -> None:
    """Add ``backup-keystore`` and ``restore-keystore`` to the admin app."""
    admin.command(
        "backup-keystore",
        epilog="Example:  strongroom admin backup-keystore --out /backups/keystore-2024-06-01.srkb",
    )(backup_command)
    admin.command(
        "restore-keystore",
        epilog="Example:  cp master.key /srv/new/ && strongroom admin restore-keystore "
        "--in keystore.srkb --data-dir /srv/new",
    )(restore_command)
