"""The fast starts of ``strongroom --help``, ``encrypt`` and ``decrypt`` (issue 18): the same
page, options, output, files and errors as the typer commands, without importing typer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.cli.data_fast import DECRYPT_OPTIONS, ENCRYPT_OPTIONS, run_decrypt, run_encrypt
from strongroom.cli.fast_args import parse_args
from strongroom.cli.main import COMMANDS, EPILOG, HELP, load_module_commands
from strongroom.cli.top_help import help_page, help_width
from strongroom.cli.volume_fast import OPTIONS, REWRAP_OPTIONS
from strongroom.testing.server import ServerInfo, aws_env, console_script

TYPER_MAIN = (
    "import sys\n"
    "from strongroom.cli.main import build_app\n"
    "build_app()(sys.argv[1:], prog_name='strongroom')\n"
)
"""The typer command line alone, never a fast start."""


def _typer(
    args: list[str], env: dict[str, str], cwd: Path | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """``strongroom ARGS`` through typer alone."""
    return subprocess.run(
        [sys.executable, "-c", TYPER_MAIN, *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        check=False,
    )


def _both(
    args: list[str], env: dict[str, str], cwd: Path | None = None, stdin: bytes = b""
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """``strongroom ARGS`` as the console script runs it (fast start first), then typer's."""
    fast = subprocess.run(
        [console_script(), *args], input=stdin, capture_output=True, env=env, cwd=cwd, check=False
    )
    return fast, _typer(args, env, cwd, stdin)


def _page(columns: int) -> str:
    rows = [(name, summary) for name, (_, summary) in COMMANDS.items()]
    return help_page("strongroom", HELP, EPILOG, rows, help_width(columns))


@pytest.mark.parametrize("columns", [20, 50, 52, 61, 70, 79, 80, 81, 120, 300])
def test_the_help_page_is_clicks(columns: int) -> None:
    slow = _typer(["--help"], {**os.environ, "COLUMNS": str(columns)})
    assert (slow.returncode, slow.stdout.decode()) == (0, _page(columns))


@pytest.mark.parametrize(("args", "status"), [(["--help"], 0), (["-h"], 0), ([], 2)])
def test_the_console_script_prints_it_without_typer(args: list[str], status: int) -> None:
    fast, slow = _both(args, {**os.environ, "COLUMNS": "66"})
    assert (fast.returncode, fast.stdout, fast.stderr) == (status, _page(66).encode(), b"")
    assert (slow.returncode, slow.stdout, slow.stderr) == (fast.returncode, fast.stdout, b"")
    probe = (
        "import sys\nfrom strongroom.cli.main import fast_start\n"
        f"fast_start({args!r})\nprint(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('typer', 'click', 'rich', 'boto3', 'botocore')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip().endswith("[]"), loaded


def _opts(command: object) -> set[str]:
    found: set[str] = set()
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "option":
            found |= {*param.opts, *param.secondary_opts}
    return found - {"--help", "-h"}


def test_each_fast_start_knows_exactly_its_commands_options() -> None:
    data = load_module_commands("strongroom.cli.data")
    assert _opts(data["encrypt"]) == set(ENCRYPT_OPTIONS)
    assert _opts(data["decrypt"]) == set(DECRYPT_OPTIONS)
    volume = load_module_commands("strongroom.cli.volume")["volume"].commands  # type: ignore[attr-defined]
    assert _opts(volume["pass"]) == set(OPTIONS)
    assert _opts(volume["unlock"]) == {*OPTIONS, "--read-only"}
    assert _opts(volume["rewrap"]) == {*REWRAP_OPTIONS, "--json"}


def test_argument_forms() -> None:
    spec = {"-k": "--key", "--key": "--key", "-c": "--context", "--context": "--context"}
    got = parse_args(
        ["-k", "alias/a", "-", "--context=a=b", "out", "-c", "c=d"],
        ("source", "dest"),
        spec,
        repeatable=("--context",),
    )
    assert got == {
        "--key": ["alias/a"],
        "--context": ["a=b", "c=d"],
        "source": ["-"],
        "dest": ["out"],
    }
    for unusual in (
        ["-kalias/a", "in", "out"],  # click reads it; the fast start leaves it to click
        ["--key", "a", "--key", "b", "in", "out"],
        ["--key", "a", "in"],
        ["--key", "a", "in", "out", "extra"],
        ["--key", "a", "--", "in", "out"],
        ["--ke", "a", "in", "out"],
        ["--key"],
        ["--help"],
    ):
        assert parse_args(unusual, ("source", "dest"), spec, repeatable=("--context",)) is None
    assert run_encrypt(["in", "out"]) is None  # --key is required: typer says so
    assert run_encrypt(["-k", "k", "--chunk-size", "1e6", "in", "out"]) is None
    assert run_decrypt(["in", "out", "--json"]) is None


@pytest.fixture
def env(kms_server: ServerInfo, tmp_path: Path) -> dict[str, str]:
    """The variables ``eval "$(strongroom env)"`` sets."""
    return aws_env(
        kms_server.credentials,
        tmp_path,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_KMS=kms_server.endpoint_url,
        AWS_CA_BUNDLE=str(kms_server.ca_bundle),
    )


def test_encrypt_and_decrypt_behave_as_the_typer_commands(
    env: dict[str, str], kms_key_arn: str, tmp_path: Path
) -> None:
    (tmp_path / "plain").write_bytes(b"twice\n")
    fast, slow = _both(
        ["encrypt", "-k", kms_key_arn, "-c", "app=x", "plain", "sealed"], env, tmp_path
    )
    assert fast.returncode == 0, fast.stderr
    fast, slow = _both(
        ["encrypt", "plain", "sealed2", "--key", kms_key_arn, "--context=app=x"], env, tmp_path
    )
    assert (fast.returncode, fast.stdout, fast.stderr) == (0, b"", b"")
    assert (slow.returncode, slow.stdout, slow.stderr) == (0, b"", b"")
    for sealed in ("sealed", "sealed2"):
        fast, slow = _both(["decrypt", "-c", "app=x", sealed, "-"], env, tmp_path)
        assert (fast.returncode, fast.stdout, fast.stderr) == (0, b"twice\n", b"")
        assert (slow.returncode, slow.stdout, slow.stderr) == (0, b"twice\n", b"")
    fast, slow = _both(["encrypt", "-k", kms_key_arn, "-", "-"], env, tmp_path, b"piped\n")
    assert fast.returncode == slow.returncode == 0
    back, _ = _both(["decrypt", "-", "-"], env, tmp_path, fast.stdout)
    assert back.stdout == b"piped\n"


@pytest.mark.parametrize(
    "args",
    [
        ["encrypt", "-k", "alias/none-such", "plain", "out"],
        ["encrypt", "-k", "KEY", "-c", "nokey", "plain", "out"],
        ["encrypt", "-k", "KEY", "-c", "a=1", "-c", "a=2", "plain", "out"],
        ["encrypt", "-k", "KEY", "-c", "strongroom:x=1", "plain", "out"],
        ["encrypt", "-k", "KEY", "--chunk-size", "1000", "plain", "out"],
        ["encrypt", "-k", "KEY", "missing", "out"],
        ["encrypt", "-k", "KEY", "plain", "."],
        ["encrypt", "-k", "KEY", "plain", "out", "--ca-bundle", "nope.pem"],
        ["encrypt", "-k", "KEY", "plain", "out", "--endpoint", "ftp://x"],
        ["decrypt", "plain", "out"],
        ["decrypt", "missing", "out"],
        ["decrypt", "-c", "app=other", "sealed", "out"],
        ["encrypt", "plain", "out"],
        ["encrypt", "-k", "KEY", "--chunk-size", "big", "plain", "out"],
        ["decrypt", "--bogus", "sealed", "out"],
    ],
)
def test_failures_say_the_same(
    args: list[str], env: dict[str, str], kms_key_arn: str, tmp_path: Path
) -> None:
    (tmp_path / "plain").write_bytes(b"plain, not a stream\n")
    made = _typer(["encrypt", "-k", kms_key_arn, "-c", "app=x", "plain", "sealed"], env, tmp_path)
    assert made.returncode == 0, made.stderr
    args = [kms_key_arn if a == "KEY" else a for a in args]
    spec = ENCRYPT_OPTIONS if args[0] == "encrypt" else DECRYPT_OPTIONS
    usual = parse_args(args[1:], ("source", "dest"), spec, repeatable=("--context",))
    key_given = usual is not None and (args[0] == "decrypt" or "--key" in usual)
    fast_start = key_given and "big" not in args  # a --chunk-size typer must read
    leaves_it_to_typer = ("--bogus" in args, "big" in args, args[:2] == ["encrypt", "plain"])
    assert fast_start != any(leaves_it_to_typer)
    fast, slow = _both(args, env, tmp_path)
    assert fast.returncode != 0
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    )
    assert not (tmp_path / "out").exists()


def test_help_into_a_closed_pipe_exits_1_quietly_as_typer() -> None:
    statuses = []
    for argv in ([console_script(), "--help"], [sys.executable, "-c", TYPER_MAIN, "--help"]):
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before the page is written
        statuses.append((process.wait(timeout=60), process.stderr.read()))
        process.stderr.close()
    assert statuses == [(1, b""), (1, b"")]


@pytest.mark.parametrize(
    "text",
    [
        "Rewrapped /tmp/v.img: UUID 0b6e, keyslot 0, token 0, key arn:aws:kms:us-east-1:1:key/9",
        "a :key: and :thumbs_up-text: and :no_such_emoji: and 10:30:00",
        "markup [bold]x[/bold] and \\[escaped]",
        "tab\there and é",
        "long " * 300,
        "",
    ],
)
def test_print_line_is_what_rich_prints(text: str) -> None:
    code = (
        "import sys\nfrom strongroom.cli.output import print_line, stdout_console\n"
        "(stdout_console().print if sys.argv[1] == 'rich' else print_line)(sys.argv[2])\n"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code, how, text], capture_output=True, check=True
        ).stdout
        for how in ("rich", "ours")
    ]
    assert outputs[0] == outputs[1]


def test_rewraps_fast_start_imports_little() -> None:
    code = (
        "import sys\n"
        "from strongroom.cli import main, volume_fast, output\n"
        "import strongroom.volume.lifecycle, strongroom.volume.aws_json\n"
        "heavy = {'typer', 'click', 'rich', 'boto3', 'botocore', 'typing', 'dataclasses',"
        " 'http.client', 'cryptography', 'uuid', 'shutil'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
