"""``strongroom env``: the shell lines that point AWS clients at a data directory's server.

``eval "$(strongroom env)"`` exports the admin credentials that ``strongroom server``
wrote to ``DATA_DIR/admin-credentials.json``, in the variables every AWS SDK and the AWS
CLI read. The endpoint goes to ``AWS_ENDPOINT_URL_KMS`` and ``AWS_ENDPOINT_URL_STS`` (the
server answers ``sts get-caller-identity`` too), not ``AWS_ENDPOINT_URL``: that one also
redirects S3 (and every other service), so ``objects --s3-bucket`` would talk to the key
service.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from strongroom.cli.common import DataDirOption, cli_errors, data_dir_of
from strongroom.config import DEFAULT_DATA_DIR
from strongroom.errors import ValidationError

CREDENTIALS_FILE = "admin-credentials.json"
"""The file ``strongroom server`` writes the admin credentials to, in the data directory."""

CLEARED = ("AWS_SESSION_TOKEN", "AWS_PROFILE")
"""Variables that would override or spoil the exported credentials, so they are unset."""


def env_command_line(data_dir: Path) -> str:
    """The ``eval "$(strongroom env ...)"`` line for ``data_dir``, as a user would type it."""
    absolute = Path(os.path.abspath(data_dir))
    if absolute == Path(os.path.abspath(DEFAULT_DATA_DIR)):
        line = 'eval "$(strongroom env)"'
    else:
        line = f'eval "$(strongroom env --data-dir {shlex.quote(str(absolute))})"'
    return activation_prefix() + line


def activation_prefix() -> str:
    """``. VENV/bin/activate && `` when this runs from a virtualenv that is not on PATH.

    ``bash scripts/strongroom server`` runs the server from ``.venv`` without activating
    it; another shell then needs the activation before ``strongroom`` is a command.
    """
    if sys.prefix == sys.base_prefix:
        return ""
    bin_dir = Path(sys.executable).parent
    if str(bin_dir) in os.environ.get("PATH", "").split(os.pathsep):
        return ""
    return f". {shlex.quote(str(bin_dir / 'activate'))} && "


def read_credentials(data_dir: Path) -> dict[str, Any]:
    """The admin credentials of ``data_dir`` (``ValidationError`` naming what to do)."""
    path = Path(os.path.abspath(data_dir)) / CREDENTIALS_FILE
    try:
        info = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ValidationError(
            f"No admin credentials in {path.parent} ({CREDENTIALS_FILE} is missing). "
            "Start 'strongroom server' there first (its first start writes them), or name "
            "the server's data directory with --data-dir DIR or $STRONGROOM_DATA_DIR."
        ) from None
    except ValueError:
        raise ValidationError(f"{path} is not valid JSON.") from None
    wanted = ("AccessKeyId", "SecretAccessKey", "Region", "Endpoint")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in wanted):
        raise ValidationError(f"{path} lacks one of {', '.join(wanted)}.")
    return info


def export_lines(info: dict[str, Any]) -> list[str]:
    """``export``/``unset`` lines (POSIX shells) for credentials read from the file."""
    values = {
        "AWS_ACCESS_KEY_ID": info["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": info["SecretAccessKey"],
        "AWS_DEFAULT_REGION": info["Region"],
        "AWS_ENDPOINT_URL_KMS": info["Endpoint"],
        "AWS_ENDPOINT_URL_STS": info["Endpoint"],
    }
    lines = [f"export {name}={shlex.quote(str(value))}" for name, value in values.items()]
    bundle = info.get("CaBundle")
    if isinstance(bundle, str) and bundle:
        lines.append(f"export AWS_CA_BUNDLE={shlex.quote(bundle)}")
    else:  # plain HTTP or an operator's certificate the system already trusts
        lines.append("unset AWS_CA_BUNDLE")
    lines.append(f"unset {' '.join(CLEARED)}")
    return lines


def env_command(data_dir: DataDirOption = None) -> None:
    """Print shell lines exporting a data directory's admin credentials for AWS clients.

    Sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
    AWS_ENDPOINT_URL_KMS and AWS_ENDPOINT_URL_STS (the server's two APIs: S3 and other
    services keep their endpoints) and AWS_CA_BUNDLE from DATA_DIR/admin-credentials.json;
    unsets AWS_SESSION_TOKEN and AWS_PROFILE, which would spoil them. The secret is
    printed: use it with eval.
    """
    with cli_errors():
        info = read_credentials(data_dir_of(data_dir))
    sys.stdout.write("\n".join(export_lines(info)) + "\n")


def register(app: typer.Typer) -> None:
    """Add ``env`` to the top-level app."""
    app.command(
        "env",
        epilog='Examples:  eval "$(strongroom env)"   |   eval "$(strongroom env --data-dir '
        '/var/lib/strongroom)"',
    )(env_command)
