"""The top-level app: commands listed without importing them, loaded on use, flags shown
as flags (issue 18, points 7 and 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strongroom.cli.main import COMMAND_MODULES, COMMANDS, build_app, load_module_commands
from strongroom.testing.server import ServerInfo

HEAVY = ("boto3", "botocore", "strongroom.kms", "strongroom.server", "strongroom.mesh", "pydantic")
"""What neither ``--help`` nor ``encrypt`` may import before it is needed."""


def _help_of(command: object) -> str:
    text = getattr(command, "short_help", None) or getattr(command, "help", None) or ""
    return " ".join(text.split("\n\n")[0].split())


def test_every_command_is_listed_with_its_module_and_summary() -> None:
    registered: dict[str, tuple[str, str]] = {}
    for module in COMMAND_MODULES:
        for name, command in load_module_commands(module).items():
            registered[name] = (module, _help_of(command))
    missing = sorted(set(registered) - set(COMMANDS))
    assert not missing, f"add to strongroom.cli.main.COMMANDS: {missing}"
    for name, (module, summary) in COMMANDS.items():
        assert name in registered, f"{name} is listed but no module registers it"
        assert registered[name] == (module, summary), name


def _modules_after(
    *args: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> set[str]:
    probe = (
        "import sys\n"
        "from strongroom.cli.main import main\n"
        f"sys.argv = ['strongroom', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=cwd,
    )
    return set(done.stderr.split())


@pytest.mark.parametrize("args", [("--help",), ("encrypt", "--help"), ("env", "--help")])
def test_start_imports_only_what_the_command_uses(args: tuple[str, ...]) -> None:
    loaded = _modules_after(*args)
    assert "strongroom.cli.main" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert not heavy, heavy


def _all_paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _all_paths(sub, (*prefix, name))
    return paths


def test_help_shows_flags_without_a_type_everywhere() -> None:
    app, runner = build_app(), CliRunner()
    paths: list[tuple[str, ...]] = [()]
    for module in COMMAND_MODULES:
        for name, command in load_module_commands(module).items():
            paths += _all_paths(command, (name,))
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path


def test_a_typo_gets_suggestions() -> None:
    result = CliRunner().invoke(build_app(), ["encrpt"])
    assert result.exit_code == 2
    assert "Did you mean 'encrypt'" in result.output


def test_objects_help_uses_legal_bucket_names() -> None:
    import re

    result = CliRunner().invoke(build_app(), ["objects", "--help"], env={"COLUMNS": "300"})
    for bucket in re.findall(r"--s3-bucket (\S+)", result.output):
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket), bucket


def test_encrypt_and_decrypt_run_without_botocore(
    kms_server: ServerInfo, kms_key_arn: str, tmp_path: Path
) -> None:
    """With the variables of ``strongroom env``, the two commands talk to the server
    without importing botocore (most of their start-up time)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=kms_server.credentials["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=kms_server.credentials["SecretAccessKey"],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_KMS=kms_server.endpoint_url,
        AWS_CA_BUNDLE=str(kms_server.ca_bundle),
    )
    (tmp_path / "plain").write_bytes(b"quick\n")
    where = str(tmp_path)
    loaded = _modules_after("encrypt", "-k", kms_key_arn, "plain", "sealed", env=env, cwd=where)
    assert (tmp_path / "sealed").exists()
    loaded |= _modules_after("decrypt", "sealed", "back", env=env, cwd=where)
    assert (tmp_path / "back").read_bytes() == b"quick\n"
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert not heavy, heavy


def test_no_arguments_prints_the_command_list() -> None:
    result = CliRunner().invoke(build_app(), [])
    assert result.exit_code == 2
    assert "Usage: strongroom" in result.output and "encrypt" in result.output
