"""``strongroom admin audit verify|show``: check and read the hash-chained audit log offline.

Both read the key store directly (no root of trust needed), page by page, so a chain of
any length is checked in constant memory. Events hold who, what, which key, the result
and the request id; never key material or plaintext.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.table import Table

from strongroom.cli.context import (
    DataDirOption,
    JsonOption,
    cli_errors,
    data_dir_of,
    open_store_for,
    print_json,
    stdout_console,
)
from strongroom.ports import AuditRecord, Store
from strongroom.ports.audit_chain import GENESIS_HASH, ChainBroken, verify_chain

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


def verify_store_chain(store: Store) -> tuple[int, bytes]:
    """Verify the whole chain; return ``(last seq, head hash)`` or raise ``ChainBroken``."""
    seq, head = 0, GENESIS_HASH
    for page in audit_pages(store):
        seq, head = verify_chain(page, head, seq)
    return seq, head


def verify_command(data_dir: DataDirOption = None, json_output: JsonOption = False) -> None:
    """Verify the audit chain: exit 0 if intact, 1 naming the first broken event."""
    with cli_errors():
        store = open_store_for(data_dir_of(data_dir))
        try:
            seq, head = verify_store_chain(store)
        except ChainBroken as exc:
            if json_output:
                print_json({"Intact": False, "BrokenAt": exc.seq, "Reason": exc.reason})
            stderr_line = f"error: audit chain broken at event {exc.seq}: {exc.reason}\n"
            typer.echo(stderr_line, err=True, nl=False)
            raise typer.Exit(1) from None
        finally:
            store.close()
    if json_output:
        print_json({"Intact": True, "Events": seq, "HeadHash": head.hex()})
    else:
        stdout_console().print(f"{seq} events, chain intact (head {head.hex()})")


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
