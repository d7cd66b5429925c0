"""``strongroom volume pass`` without typer, rich or boto3: the fast start.

Recovering a volume key is on the boot path and is compared with ``clevis luks pass``;
building the full command line (typer, rich and every command module) costs about 0.9 s
here and a boto3 KMS client another 0.5 s. :func:`strongroom.cli.main.main` hands
``volume pass ...`` to :func:`run` first, which parses the same arguments (by
hand: argparse costs milliseconds too), reads the header, calls ``Decrypt`` through
:class:`~strongroom.volume.aws_json.AwsJsonKms` and prints the passphrase. Whenever it
cannot (help asked, arguments it does not know, an AWS chain that needs botocore) it
returns ``None`` and the typer command, which calls the same
:func:`~strongroom.volume.recover.recover_passphrase`, runs instead; so behaviour and
messages are the same on both paths.
"""

from __future__ import annotations

import sys

from strongroom.errors import StrongroomError

OPTIONS = ("--token-id", "--endpoint", "--region", "--profile", "--ca-bundle")
"""The options of ``volume pass`` (each takes a value), as the typer command names them."""


def parse_args(args: list[str]) -> dict[str, str] | None:
    """``{"device": ..., "--endpoint": ...}``, or ``None`` for anything unusual.

    ``--name value`` and ``--name=value``; one positional argument. Unknown options,
    repeats, abbreviations and ``--`` are left to the typer command (``None``), so its
    messages stay the only ones.
    """
    parsed: dict[str, str] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("-"):
            name, sep, value = arg.partition("=")
            if name not in OPTIONS or name in parsed:
                return None
            if not sep:
                index += 1
                if index == len(args):
                    return None
                value = args[index]
            parsed[name] = value
        elif "device" in parsed:
            return None
        else:
            parsed["device"] = arg
        index += 1
    return parsed if "device" in parsed else None


def run(args: list[str]) -> int | None:
    """Run ``volume pass ARGS``; ``None`` when the typer command should run instead."""
    options = parse_args(args)
    if options is None:
        return None
    token = options.get("--token-id")
    if token is not None and not token.isdigit():
        return None
    endpoint = options.get("--endpoint")
    if endpoint is None and any(n in options for n in ("--region", "--profile", "--ca-bundle")):
        return None
    from strongroom.volume.aws_chain import static_settings

    settings = static_settings(
        endpoint_url=endpoint,
        region=options.get("--region"),
        profile=options.get("--profile"),
        ca_bundle=options.get("--ca-bundle"),
    )
    if settings is None:
        return None
    from strongroom.volume.aws_json import AwsJsonKms
    from strongroom.volume.recover import recover_passphrase, region_hint

    try:
        device = options["device"]
        keys = AwsJsonKms(settings, region_hint(device))
        try:
            passphrase, _ = recover_passphrase(keys, device, None if token is None else int(token))
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
