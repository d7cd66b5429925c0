"""``option_group``: several options declared once, shown to typer, given as one value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from strongroom.cli.option_groups import option_group


@dataclass(frozen=True)
class Where:
    host: str | None = None
    port: str | None = None


HostOption = Annotated[str | None, typer.Option("--host", help="Host.")]
PortOption = Annotated[str | None, typer.Option("--port", help="Port.")]
with_where = option_group("where", Where, {"host": HostOption, "port": PortOption})
seen: list[tuple[str, Where]] = []


@with_where
def show(name: Annotated[str, typer.Argument()], where: Where = Where()) -> None:
    seen.append((name, where))


def test_the_options_reach_the_command_as_one_value() -> None:
    app = typer.Typer()
    app.command()(show)
    app.command("other")(show)  # two commands: typer wants a group to route by name
    seen.clear()
    result = CliRunner().invoke(app, ["show", "db", "--port", "5432", "--host", "h1"])
    assert result.exit_code == 0, result.output
    assert seen == [("db", Where("h1", "5432"))]
    result = CliRunner().invoke(app, ["show", "db"])
    assert seen[-1] == ("db", Where())
    help_text = CliRunner().invoke(app, ["show", "--help"]).output
    assert help_text.index("--host") < help_text.index("--port")
    assert "--where" not in help_text


def test_a_command_without_the_parameter_or_with_a_clash_is_refused() -> None:
    def no_param(name: str) -> None:
        raise AssertionError

    def clash(host: str, where: Where = Where()) -> None:
        raise AssertionError

    with pytest.raises(TypeError, match="no 'where' parameter"):
        with_where(no_param)
    with pytest.raises(TypeError, match="already has"):
        with_where(clash)
