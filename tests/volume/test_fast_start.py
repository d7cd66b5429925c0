"""The fast start of ``strongroom volume pass|unlock``: its argument parsing hands anything
unusual to the typer command, and it imports neither typer, rich, boto3, typing,
subprocess, contextlib nor urllib.parse (whose one use, splitting the endpoint URL, is
done by hand for plain URLs: compared with ``urlsplit`` here)."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.cli.volume_fast import FLAGS, parse_args, run_pass, run_unlock
from strongroom.errors import ValidationError
from strongroom.volume.aws_json import split_endpoint


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
        " 'argparse', 'cryptography', 'subprocess', 'urllib.parse', 'contextlib'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


hosts = st.sampled_from(["127.0.0.1", "KMS.Example.com", "[::1]", "[FE80::1]", "h", "a-b.c_d~"])
ports = st.none() | st.integers(0, 65535).map(str) | st.just("")
paths = st.sampled_from(["", "/", "/kms", "/a/b%20c", "/x;y=z"])
tails = st.sampled_from(["", "?q=1", "#f", "?"])


@given(st.sampled_from(["http", "https", "HTTPS"]), hosts, ports, paths, tails)
def test_split_endpoint_agrees_with_urlsplit(
    scheme: str, host: str, port: str | None, path: str, tail: str
) -> None:
    url = f"{scheme}://{host}{'' if port is None else ':' + port}{path}{tail}"
    mine, theirs = split_endpoint(url), urlsplit(url)
    assert (mine.scheme, mine.netloc, mine.hostname, mine.port, mine.path) == (
        theirs.scheme,
        theirs.netloc,
        theirs.hostname or "",
        theirs.port,
        theirs.path,
    )


@given(
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "https:/", ""]),
    st.text(alphabet="aZ09.-_~:[]/?#@%\\ \tfe\u00e9", max_size=24),
)
def test_split_endpoint_agrees_with_urlsplit_on_any_text(prefix: str, rest: str) -> None:
    url = prefix + rest
    try:
        theirs = urlsplit(url)
        expected = (theirs.scheme, theirs.netloc, theirs.hostname or "", theirs.port, theirs.path)
    except ValueError:
        with pytest.raises(ValidationError):
            split_endpoint(url)
        return
    mine = split_endpoint(url)
    assert (mine.scheme, mine.netloc, mine.hostname, mine.port, mine.path) == expected


@pytest.mark.parametrize(
    "url", ["https://h:65536", "https://h:99999/kms", "https://h:x", "https://[::1:443"]
)
def test_split_endpoint_refuses_bad_ports_and_hosts(url: str) -> None:
    with pytest.raises(ValidationError, match="Not an endpoint URL"):
        split_endpoint(url)
