"""The fast start of ``strongroom volume pass|unlock``: its argument parsing hands anything
unusual to the typer command, and it imports neither typer, rich, boto3 nor typing."""

from __future__ import annotations

import subprocess
import sys

from strongroom.cli.volume_fast import FLAGS, parse_args, run_pass, run_unlock


def test_parse_args() -> None:
    assert parse_args(["d"], ("device",)) == {"device": "d"}
    assert parse_args(["--endpoint", "https://k", "d", "--token-id=2"], ("device",)) == {
        "device": "d",
        "--endpoint": "https://k",
        "--token-id": "2",
    }
    assert parse_args(["d", "n", "--read-only"], ("device", "name"), FLAGS) == {
        "device": "d",
        "name": "n",
        "--read-only": "",
    }
    for unusual in (
        [],
        ["d", "e"],
        ["d", "--endpoint"],
        ["d", "--endpoint", "a", "--endpoint", "b"],
        ["d", "--endp", "a"],
        ["d", "--json"],
        ["d", "-h"],
        ["d", "--help"],
        ["d", "--read-only"],
    ):
        assert parse_args(unusual, ("device",)) is None, unusual
    assert parse_args(["d", "n", "--read-only", "--read-only"], ("device", "name"), FLAGS) is None


def test_unusual_arguments_go_to_typer() -> None:
    assert run_pass(["--help"]) is None
    assert run_pass(["d", "--token-id", "-1"]) is None
    assert run_pass(["d", "--region", "eu-west-1"]) is None  # --region goes with --endpoint
    assert run_unlock(["d"]) is None


def test_the_fast_start_imports_little() -> None:
    code = (
        "import sys\n"
        "from strongroom.cli import main, volume_fast\n"
        "import strongroom.volume.recover, strongroom.volume.aws_json\n"
        "heavy = {'typer', 'rich', 'boto3', 'botocore', 'typing', 'dataclasses', 'http.client',"
        " 'argparse', 'cryptography'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
