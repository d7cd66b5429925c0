"""``strongroom admin audit verify|show``: check and read the hash-chained audit log offline.

Both read the key store directly, page by page, so a chain of any length is checked in
constant memory. ``verify`` unwraps the audit key with the root of trust, checks every
event's keyed hash and compares the chain with the newest signed checkpoint
(``DATA_DIR/audit-checkpoint.json``, and any ``--checkpoint`` file or log). Events hold
who, what, which key, the result and the request id; never key material or plaintext.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

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
from strongroom.kms.audit_checkpoint import CheckpointInvalid
from strongroom.ports import AuditRecord, Store
from strongroom.ports.audit_chain import GENESIS_HASH, UNKEYED, AuditChain, verify_chain

if TYPE_CHECKING:
    from strongroom.kms.audit_checkpoint import Checkpoint

PAGE = 5000
"""Events read per transaction."""


def audit_pages(store: Store, after_seq: int = 0) -> Iterator[list[AuditRecord]]:
    """Yield the audit log after ``after_seq`` in pages, each read in its own transaction."""
    while True:
        page = store.read(lambda tx, s=after_seq: tx.read_audit(after_seq=s, limit=PAGE))  # type: ignore[misc]
        if page:
            yield page
        if len(page) < PAGE:
            return
        after_seq = page[-1].seq


def verify_store_chain(store: Store, chain: AuditChain = UNKEYED) -> tuple[int, bytes]:
    """Verify the whole chain; return ``(last seq, head hash)`` or raise ``ChainBroken``."""
    seq, head = 0, GENESIS_HASH
    for page in audit_pages(store):
        seq, head = verify_chain(page, head, seq, chain)
    return seq, head


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int], None]]:
    """An ``advance(n)`` callback counting events on a transient bar (stderr, terminals only)."""
    console = stderr_console()
    if not console.is_terminal:
        yield lambda n: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn(label), TextColumn("{task.completed} events"))
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.advance(task, n)


CheckpointOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--checkpoint",
        help="Also check against the newest signed checkpoint in this file: a copy of "
        "audit-checkpoint.json or a log holding the server's checkpoint lines (repeatable).",
        show_default=False,
    ),
]


def _newest_checkpoint(
    directory: Path, chain: AuditChain, extra: list[Path]
) -> tuple[Checkpoint | None, str | None, str | None]:
    """The newest valid checkpoint of the data directory and ``extra``; or a problem."""
    from strongroom.audittrail import CheckpointFile
    from strongroom.audittrail.checkpoint_file import read_checkpoint_file

    best: tuple[Checkpoint | None, str | None] = (None, None)
    sources: list[tuple[Path, Callable[[], Checkpoint | None]]] = [
        (CheckpointFile(directory, chain).path, CheckpointFile(directory, chain).read)
    ]
    sources += [(path, lambda p=path: read_checkpoint_file(p, chain)) for path in extra]  # type: ignore[misc]
    for path, read in sources:
        try:
            found = read()
        except CheckpointInvalid as exc:
            return None, None, f"the checkpoint file {path} is not valid for this store: {exc}"
        except OSError as exc:
            return None, None, f"cannot read the checkpoint file {path}: {exc.strerror or exc}"
        if found is not None and (best[0] is None or found.seq > best[0].seq):
            best = (found, str(path))
    return best[0], best[1], None


def verify_command(
    data_dir: DataDirOption = None,
    checkpoint: CheckpointOption = None,
    json_output: JsonOption = False,
) -> None:
    """Verify the audit chain with its key and against the newest signed checkpoint.

    Exit 0 if intact; 1 naming the first bad event and what was done to it (missing,
    renumbered, unlinked, forged, rewritten, malformed, truncated, diverged).
    """
    from strongroom.audittrail import verify_audit
    from strongroom.kms.audit_key import read_audit_chain

    directory = data_dir_of(data_dir)
    with cli_errors():
        store = open_store_for(directory)
        try:
            root = open_root_for(directory)
            try:
                chain = read_audit_chain(store, root)
            finally:
                root.close()
            newest, source, problem = _newest_checkpoint(directory, chain, checkpoint or [])
            if problem is not None:
                report = None
            else:
                with progress_bar("verifying the audit chain") as advance:
                    report = verify_audit(store, chain, newest, source, advance)
        finally:
            store.close()
    if report is None or report.broken is not None:
        kind = "checkpoint" if report is None else report.broken.kind  # type: ignore[union-attr]
        seq = None if report is None else report.broken.seq  # type: ignore[union-attr]
        reason = problem if report is None else report.broken.reason  # type: ignore[union-attr]
        if json_output:
            print_json({"Intact": False, "BrokenAt": seq, "Kind": kind, "Reason": reason})
        where = "audit check failed" if seq is None else f"audit chain broken at event {seq}"
        typer.echo(f"error: {where} ({kind}): {reason}", err=True)
        raise typer.Exit(1)
    out: dict[str, Any] = {
        "Intact": True,
        "Events": report.events,
        "HeadHash": report.head.hex(),
        "Keyed": report.keyed_from is not None,
        "KeyedFrom": report.keyed_from,
        "Checkpoint": None
        if report.checkpoint is None
        else {"Seq": report.checkpoint.seq, "File": report.checkpoint_source},
    }
    if json_output:
        print_json(out)
        return
    console = stdout_console()
    console.print(f"{report.events} events, chain intact (head {report.head.hex()})")
    if report.keyed_from is None:
        console.print(
            "warning: this store's chain is not keyed yet (no Strongroom with keyed audit "
            "has opened it): start the server once to seal it"
        )
    else:
        console.print(f"keyed from event {report.keyed_from}")
    if report.checkpoint is not None:
        console.print(
            f"matches the signed checkpoint of event {report.checkpoint.seq} "
            f"({report.checkpoint_source})"
        )
    elif report.keyed_from is not None:
        console.print("warning: no checkpoint found: a cut-off tail cannot be detected")


def _event_row(record: AuditRecord) -> dict[str, Any]:
    try:
        event: Any = json.loads(record.body)
    except ValueError:
        event = {"unparsable": record.body.hex()}
    return {"Seq": record.seq, "Hash": record.hash.hex(), "Event": event}


def _shown_time(event: dict[str, Any]) -> str:
    when = event.get("time")
    if not isinstance(when, int | float):
        return ""
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(timespec="seconds")


class EventFilter:
    """Which events ``audit show`` prints: all, or those matching every given field."""

    def __init__(
        self,
        request_id: str | None,
        key: str | None,
        operation: str | None,
        account: str | None,
    ) -> None:
        self.request_id, self.key = request_id, key
        self.operation, self.account = operation, account
        # a cheap test on the raw body first: most events are not read as JSON at all
        needles = [v for v in (request_id, key, operation, account) if v]
        self._needles = [json.dumps(v)[1:-1].encode("utf-8") for v in needles]

    @property
    def filters(self) -> bool:
        """Whether any field was given."""
        return bool(self._needles)

    def may_match(self, record: AuditRecord) -> bool:
        """Whether ``record``'s raw body holds every given value (before any parsing)."""
        return all(needle in record.body for needle in self._needles)

    def matches(self, event: Any) -> bool:
        """Whether the parsed ``event`` passes every given field."""
        if not isinstance(event, dict):
            return False
        arn = str(event.get("keyArn") or "")
        return (
            (self.request_id is None or event.get("requestId") == self.request_id)
            and (self.key is None or arn == self.key or arn.endswith(f":key/{self.key}"))
            and (self.operation is None or event.get("operation") == self.operation)
            and (self.account is None or event.get("account") == self.account)
        )


def show_command(
    since: Annotated[
        int, typer.Option("--since", min=0, help="Show events after this sequence number.")
    ] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 100,
    request_id: Annotated[
        str | None,
        typer.Option(
            "--request-id",
            help="Only the events of this request id (KmsRequestId, x-amzn-RequestId).",
        ),
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Only events of this key (key id or key ARN).")
    ] = None,
    operation: Annotated[
        str | None, typer.Option("--operation", help="Only events of this operation (Decrypt...).")
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only events of this tenant's account id.")
    ] = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print audit events (who, what, which key, result, request id), oldest first.

    With ``--request-id``, ``--key``, ``--operation`` or ``--account`` the whole log after
    ``--since`` is searched for the first ``--limit`` events that match them all.
    """
    rows: list[dict[str, Any]] = []
    wanted = EventFilter(request_id, key, operation, account)
    with cli_errors():
        store = open_store_for(data_dir_of(data_dir))
        try:
            for page in audit_pages(store, since):
                for record in page:
                    if wanted.filters and not wanted.may_match(record):
                        continue
                    row = _event_row(record)
                    if wanted.filters and not wanted.matches(row["Event"]):
                        continue
                    rows.append(row)
                    if len(rows) >= limit:
                        break
                if len(rows) >= limit:
                    break
        finally:
            store.close()
    if json_output:
        print_json({"Events": rows})
        return
    table = Table(title=f"{len(rows)} audit event(s)")
    for column in ("Seq", "Time", "Operation", "Account", "Principal", "Key", "Result"):
        table.add_column(column)
    for row in rows:
        event = row["Event"] if isinstance(row["Event"], dict) else {}
        table.add_row(
            str(row["Seq"]),
            _shown_time(event),
            str(event.get("operation", "")),
            str(event.get("account", "")),
            str(event.get("principal") or event.get("accessKeyId") or ""),
            str(event.get("keyArn") or ""),
            str(event.get("result", "")),
        )
    stdout_console().print(table)


def register(admin: typer.Typer) -> None:
    """Add ``audit verify`` and ``audit show`` to the admin app."""
    app = typer.Typer(
        help="Verify and read the hash-chained audit log.",
        epilog="Examples:  strongroom admin audit verify   |   strongroom admin audit show --json",
        no_args_is_help=True,
    )
    app.command(
        "verify", epilog="Example:  strongroom admin audit verify --data-dir /var/lib/strongroom"
    )(verify_command)
    app.command(
        "show",
        epilog="Examples:  strongroom admin audit show --since 1000 --limit 50   |   "
        "strongroom admin audit show --request-id 5e5fb19a-e9c5-49fc-abf8-b1289428d7d6",
    )(show_command)
    admin.add_typer(app, name="audit")
