"""``strongroom volume pass`` without typer, rich or boto3: the fast start.

Recovering a volume key is on the boot path and is compared with ``clevis luks pass``;
building the full command line (typer, rich and every command module) costs about 0.9 s
here and a boto3 KMS client another 0.5 s. :func:`strongroom.cli.main.main` hands
``volume pass ...`` to :func:`run` first, which parses the same arguments with
``argparse``, reads the header, calls ``Decrypt`` through
:class:`~strongroom.volume.aws_json.AwsJsonKms` and prints the passphrase. Whenever it
cannot (help asked, arguments it does not know, an AWS chain that needs botocore) it
returns ``None`` and the typer command, which calls the same
:func:`~strongroom.volume.recover.recover_passphrase`, runs instead; so behaviour and
messages are the same on both paths.
"""

from __future__ import annotations

import argparse
import sys

from strongroom.errors import StrongroomError


class _NotHandled(Exception):
    """Raised by the parser instead of exiting: the typer command takes over."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _NotHandled(message)


def _parser() -> _Parser:
    parser = _Parser(prog="strongroom volume pass", add_help=False, allow_abbrev=False)
    parser.add_argument("device")
    parser.add_argument("--token-id", type=int)
    for name in ("--endpoint", "--region", "--profile", "--ca-bundle"):
        parser.add_argument(name)
    return parser


def run(args: list[str]) -> int | None:
    """Run ``volume pass ARGS``; ``None`` when the typer command should run instead."""
    if any(arg in ("-h", "--help") for arg in args):
        return None
    try:
        options = _parser().parse_args(args)
    except _NotHandled:
        return None
    if options.token_id is not None and options.token_id < 0:
        return None
    if options.endpoint is None and (options.region or options.profile or options.ca_bundle):
        return None
    from strongroom.volume.aws_chain import static_settings

    settings = static_settings(
        endpoint_url=options.endpoint,
        region=options.region,
        profile=options.profile,
        ca_bundle=options.ca_bundle,
    )
    if settings is None:
        return None
    from strongroom.volume.aws_json import AwsJsonKms
    from strongroom.volume.recover import recover_passphrase, region_hint

    try:
        keys = AwsJsonKms(settings, region_hint(options.device))
        try:
            passphrase, _ = recover_passphrase(keys, options.device, options.token_id)
        finally:
            keys.close()
    except StrongroomError as exc:
        sys.stderr.write(f"error: {' '.join((str(exc) or type(exc).__name__).split())}\n")
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"error: {where}{exc.strerror or exc}\n")
        return 1
    from strongroom.volume.output import write_out

    return write_out(passphrase)
