"""Human-readable output into a pipe keeps whole values (ids, ARNs, hashes)."""

from __future__ import annotations

import pytest
from rich.table import Table

from strongroom.cli.context import stdout_console


def test_piped_tables_and_lines_are_not_cut(capsys: pytest.CaptureFixture[str]) -> None:
    arn = "arn:aws:iam::111122223333:user/" + "u" * 60
    table = Table(title="1 access key(s)")
    for column in ("AccessKeyId", "UserName", "Arn", "CreateDate"):
        table.add_column(column)
    table.add_row("AKIAIOSFODNN7EXAMPLE", "app", arn, "2024-06-01T00:00:00+00:00")
    console = stdout_console()  # stdout is captured: not a terminal
    console.print(table)
    head = "ab" * 32
    console.print(f"12 events, chain intact (head {head})")
    out = capsys.readouterr().out
    assert "AKIAIOSFODNN7EXAMPLE" in out and arn in out and "…" not in out
    assert f"(head {head})\n" in out
