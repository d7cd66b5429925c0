"""``strongroom encrypt|decrypt`` and ``strongroom objects`` against a real server (HTTPS).

The console script runs in a subprocess with the standard AWS environment pointing at a
``strongroom server`` started for this module.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from strongroom.crypto.stream import parse_header
from strongroom.testing.server import ServerInfo, console_script
from strongroom.testing.server import aws_env as server_env

MIB = 1 << 20


def script() -> str:
    return console_script()


@pytest.fixture(scope="module")
def aws_env(kms_server: ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The AWS chain at the kms_server: credentials, region, endpoint and CA bundle."""
    return server_env(
        kms_server.credentials,
        tmp_path_factory.mktemp("aws"),
        AWS_DEFAULT_REGION=kms_server.credentials["Region"],
        AWS_CA_BUNDLE=str(kms_server.ca_bundle),
        AWS_ENDPOINT_URL_KMS=kms_server.endpoint_url,
        COLUMNS="200",
    )


class Cli:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    def __call__(
        self, *args: str, stdin: bytes = b"", expect: int = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [script(), *args],
            input=stdin,
            capture_output=True,
            env=self.env if env is None else env,
            cwd=self.cwd,
            timeout=120,
            check=False,
        )
        assert proc.returncode == expect, (args, proc.returncode, proc.stderr.decode())
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
        return proc


@pytest.fixture
def cli(aws_env: dict[str, str], tmp_path: Path) -> Cli:
    return Cli(aws_env, tmp_path)


def stored_file(root: Path, name: str) -> Path:
    """The file of object ``name`` in a directory store (not its index entry)."""
    return next(p for p in root.rglob(f"{name}.o") if "_index.d" not in p.parts)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_encrypt_decrypt_round_trip_of_a_file(cli: Cli, kms_key_arn: str, tmp_path: Path) -> None:
    plain = os.urandom(3 * MIB + 123)
    (tmp_path / "in.bin").write_bytes(plain)
    cli("encrypt", "--key", kms_key_arn, "-c", "app=tests", "-c", "env=ci", "in.bin", "out.sr")
    sealed = (tmp_path / "out.sr").read_bytes()
    header = parse_header(sealed)
    assert dict(header.context) == {"app": "tests", "env": "ci"}
    assert header.key_id == kms_key_arn and plain[:4096] not in sealed
    cli("decrypt", "--context", "env=ci", "-c", "app=tests", "out.sr", "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == plain
    assert leftovers(tmp_path) == []


def test_stdin_and_stdout(cli: Cli, kms_key_arn: str) -> None:
    plain = os.urandom(MIB + 7)
    sealed = cli("encrypt", "-k", kms_key_arn, "-", "-", stdin=plain).stdout
    assert parse_header(sealed).key_id == kms_key_arn
    assert cli("decrypt", "-", "-", stdin=sealed).stdout == plain


def test_tampered_and_wrong_context_leave_no_output(
    cli: Cli, kms_key_arn: str, tmp_path: Path
) -> None:
    plain = os.urandom(2 * MIB)
    (tmp_path / "in.bin").write_bytes(plain)
    cli("encrypt", "-k", kms_key_arn, "-c", "purpose=a", "--chunk-size", "65536", "in.bin", "s.sr")
    sealed = (tmp_path / "s.sr").read_bytes()
    flipped = bytearray(sealed)
    flipped[len(sealed) - 100] ^= 0x80  # in the last chunk: every earlier chunk verifies
    (tmp_path / "flipped.sr").write_bytes(bytes(flipped))
    result = cli("decrypt", "flipped.sr", "out.bin", expect=1)
    assert result.stderr.startswith(b"error: ")
    assert not (tmp_path / "out.bin").exists()
    # a failed decrypt does not touch an existing output file either
    (tmp_path / "out.bin").write_bytes(b"keep me")
    cli("decrypt", "--context", "purpose=b", "s.sr", "out.bin", expect=1)
    assert (tmp_path / "out.bin").read_bytes() == b"keep me"
    assert leftovers(tmp_path) == []


def test_unknown_key_fails_cleanly(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "in.bin").write_bytes(b"x")
    result = cli("encrypt", "-k", "alias/missing", "in.bin", "out.sr", expect=1)
    assert b"alias/missing" in result.stderr and not (tmp_path / "out.sr").exists()
    assert leftovers(tmp_path) == []


def test_endpoint_and_ca_bundle_options(
    cli: Cli, kms_key_arn: str, kms_server: ServerInfo, aws_env: dict[str, str]
) -> None:
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_ENDPOINT_URL_KMS", "AWS_CA_BUNDLE")}
    options = ["--endpoint", kms_server.endpoint_url, "--ca-bundle", str(kms_server.ca_bundle)]
    sealed = cli("encrypt", "-k", kms_key_arn, *options, "-", "-", stdin=b"hi", env=env).stdout
    assert parse_header(sealed).key_id == kms_key_arn
    # without the CA bundle the server's certificate is not trusted
    env["AWS_MAX_ATTEMPTS"] = "1"
    args = ("decrypt", "--endpoint", kms_server.endpoint_url, "-", "-")
    result = cli(*args, stdin=sealed, env=env, expect=1)
    assert b"certificate" in result.stderr.lower() and result.stdout == b""


def test_objects_put_get_ls_rm_on_a_directory(
    cli: Cli, kms_key_arn: str, tmp_path: Path, kms_server: ServerInfo
) -> None:
    store = ["--dir", str(tmp_path / "objects")]
    body = os.urandom(MIB + 5)
    (tmp_path / "q1.pdf").write_bytes(body)
    cli("objects", "put", *store, "-k", kms_key_arn, "-c", "dept=finance", "reports/q1", "q1.pdf")
    (tmp_path / "note.txt").write_bytes(b"a note")
    cli("objects", "put", *store, "-k", kms_key_arn, "notes", "-", stdin=b"a note")
    cli(
        "objects", "put", *store, "-k", kms_key_arn, "small", "note.txt"
    )  # size known: 64 KiB chunks
    small = stored_file(tmp_path / "objects", "small").read_bytes()
    assert parse_header(small).chunk_size == 1 << 16
    doc = json.loads(cli("objects", "ls", *store, "--json").stdout)
    names = ["notes", "reports/q1", "small"]
    assert doc == {"Tenant": kms_server.credentials["AccountId"], "Objects": names}
    tenant = ["--tenant", kms_server.credentials["AccountId"]]  # no key service needed then
    assert cli("objects", "ls", *store, *tenant, "rep").stdout == b"reports/q1\n"

    cli("objects", "get", *store, "-c", "dept=finance", "reports/q1", "copy.pdf")
    assert (tmp_path / "copy.pdf").read_bytes() == body
    assert cli("objects", "get", *store, "notes").stdout == b"a note"
    part = cli("objects", "get", *store, "--offset", "1000", "--length", "70000", "reports/q1", "-")
    assert part.stdout == body[1000:71000]
    cli("objects", "get", *store, "-c", "dept=sales", "reports/q1", "bad.pdf", expect=1)
    assert not (tmp_path / "bad.pdf").exists()

    # a stored object's file decrypts with the plain decrypt command too
    stored = stored_file(tmp_path / "objects", "q1")
    assert parse_header(stored.read_bytes()).chunk_size == MIB
    cli("decrypt", "--context", "dept=finance", str(stored), "plain.pdf")
    assert (tmp_path / "plain.pdf").read_bytes() == body

    cli("objects", "rm", *store, *tenant, *names, env={"PATH": os.environ["PATH"]})
    assert b"does not exist" in cli("objects", "get", *store, "notes", "x", expect=1).stderr
    assert leftovers(tmp_path) == []


def test_objects_rolled_back_to_an_older_copy_are_refused(
    cli: Cli, kms_key_arn: str, tmp_path: Path
) -> None:
    store = ["--dir", str(tmp_path / "objects")]
    cli("objects", "put", *store, "-k", kms_key_arn, "ledger", "-", stdin=b"balance: 100")
    stored = stored_file(tmp_path / "objects", "ledger")
    old = stored.read_bytes()
    cli("objects", "put", *store, "-k", kms_key_arn, "ledger", "-", stdin=b"balance: 0")
    stored.write_bytes(old)  # someone with access to the directory puts the old copy back
    refused = cli("objects", "get", *store, "ledger", "-", expect=1)
    assert b"rolled back" in refused.stderr and refused.stdout == b""
    cli("objects", "put", *store, "-k", kms_key_arn, "ledger", "-", stdin=b"balance: 7")
    assert cli("objects", "get", *store, "ledger", "-").stdout == b"balance: 7"


def test_progress_bar_on_a_terminal_only(cli: Cli, kms_key_arn: str, tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"\0" * (17 * MIB))
    env = {**cli.env, "TERM": "xterm-256color"}
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [script(), "encrypt", "-k", kms_key_arn, "big.bin", "big.sr"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            seen += data
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    assert b"encrypting" in seen
    # not on a pipe, and not when stdout carries the data
    assert b"encrypting" not in cli("encrypt", "-k", kms_key_arn, "big.bin", "b2.sr").stderr
    assert (tmp_path / "big.sr").stat().st_size == (tmp_path / "b2.sr").stat().st_size


def test_context_parsing_and_backend_choice() -> None:
    from typer.testing import CliRunner

    from strongroom.cli.data import parse_context
    from strongroom.cli.main import build_app
    from strongroom.errors import ValidationError

    assert parse_context(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    assert parse_context(None) == {}
    for bad in (["novalue"], ["=v"], ["a=1", "a=2"], ["strongroom:object=x"]):
        with pytest.raises(ValidationError):
            parse_context(bad)
    runner = CliRunner()
    app = build_app()
    for args in (["objects", "ls"], ["objects", "ls", "--dir", "d", "--s3-bucket", "b"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "exactly one of" in result.output
    result = runner.invoke(app, ["encrypt", "-k", "k", "-c", "bad", "in", "out"])
    assert result.exit_code == 1 and "KEY=VALUE" in result.output


def test_objects_on_s3(cli: Cli, kms_key_arn: str, tmp_path: Path, kms_server: ServerInfo) -> None:
    import boto3

    from strongroom.testing.s3 import run_moto_server

    with run_moto_server() as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket="cli-objects")
        body = os.urandom(MIB + 9)
        (tmp_path / "q1.pdf").write_bytes(body)
        bucket = ["--s3-bucket", "cli-objects"]
        cli(
            "objects", "put", *bucket, "--s3-endpoint", endpoint, "-k", kms_key_arn, "q/1", "q1.pdf"
        )
        tenant = kms_server.credentials["AccountId"]
        stored = s3.get_object(Bucket="cli-objects", Key=f"{tenant}/q/1")["Body"].read()
        assert parse_header(stored).key_id == kms_key_arn and body[:4096] not in stored
        env = {**cli.env, "AWS_ENDPOINT_URL_S3": endpoint}  # the AWS chain names the endpoint
        got = cli("objects", "get", *bucket, "--offset", str(MIB), "q/1", "-", env=env)
        assert got.stdout == body[MIB:]
        assert cli("objects", "ls", *bucket, "--tenant", tenant, env=env).stdout == b"q/1\n"
        cli("objects", "rm", *bucket, "--tenant", tenant, "q/1", env=env)
        assert s3.list_objects_v2(Bucket="cli-objects").get("KeyCount") == 0


def test_every_data_command_has_help_with_an_example() -> None:
    from typer.testing import CliRunner

    from strongroom.cli.main import build_app

    app, runner = build_app(), CliRunner()
    for command in (
        ("encrypt",),
        ("decrypt",),
        ("objects",),
        ("objects", "put"),
        ("objects", "get"),
        ("objects", "ls"),
        ("objects", "rm"),
    ):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, command
        text = " ".join(result.output.split())
        assert "Example" in text and f"strongroom {' '.join(command)} " in text, command


def writing_into(pid: int, directory: Path) -> bool:
    """Whether process ``pid`` has a file open in ``directory`` (named or unnamed)."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir() if fds.exists() else ():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(directory) + "/"):
            return True
    return False


@pytest.mark.parametrize("signum", [15, 9], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_write_leaves_no_partial_file(
    cli: Cli, kms_key_arn: str, tmp_path: Path, signum: int
) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [script(), "encrypt", "-k", kms_key_arn, "-", "out.sr"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env,
        cwd=tmp_path,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(os.urandom(3 * MIB))  # more is to come: the command waits for it
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not writing_into(proc.pid, tmp_path):  # wait for the output file (a condition)
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signum)
        status = proc.wait(timeout=60)
        assert status == (128 + signum if signum == signal.SIGTERM else -signum)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.sr").exists()
