"""``strongroom volume pass`` and ``unlock`` without typer, rich or boto3: the fast start.

Recovering a volume key is on the boot path and is compared with ``clevis luks pass``;
building the full command line (typer, rich and every command module) costs about 0.9 s
here and a boto3 KMS client another 0.5 s. :func:`strongroom.cli.main.main` hands
``volume pass ...`` to :func:`run_pass` first (``volume unlock ...`` to
:func:`run_unlock`), which parses the same arguments (by
hand: argparse costs milliseconds too), reads the header, calls ``Decrypt`` through
:class:`~strongroom.volume.aws_json.AwsJsonKms` and prints the passphrase. Whenever it
cannot (help asked, arguments it does not know, an AWS chain that needs botocore) it
returns ``None`` and the typer command, which calls the same
:mod:`~strongroom.volume.recover` functions, runs instead; so behaviour and
messages are the same on both paths.
"""

from __future__ import annotations

import sys

from strongroom.errors import StrongroomError

TYPE_CHECKING = False  # not typing's: this module is the fast start
if TYPE_CHECKING:
    from strongroom.volume.aws_chain import StaticSettings

OPTIONS = ("--token-id", "--endpoint", "--region", "--profile", "--ca-bundle")
"""The options of ``volume pass`` and ``unlock`` that take a value, as typer names them."""
FLAGS = ("--read-only",)
"""Options without a value (``unlock`` only)."""


def parse_args(
    args: list[str], positionals: tuple[str, ...], flags: tuple[str, ...] = ()
) -> dict[str, str] | None:
    """``{"device": ..., "--endpoint": ...}``, or ``None`` for anything unusual.

    ``--name value`` and ``--name=value`` for :data:`OPTIONS`, ``flags`` without a value,
    ``positionals`` in order. Unknown options, repeats, abbreviations and ``--`` are left to
    the typer command (``None``), so its messages stay the only ones.
    """
    parsed: dict[str, str] = {}
    given: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in flags and arg not in parsed:
            parsed[arg] = ""
        elif arg.startswith("-"):
            name, sep, value = arg.partition("=")
            if name not in OPTIONS or name in parsed:
                return None
            if not sep:
                index += 1
                if index == len(args):
                    return None
                value = args[index]
            parsed[name] = value
        else:
            given.append(arg)
        index += 1
    if len(given) != len(positionals):
        return None
    parsed.update(zip(positionals, given, strict=True))
    return parsed


def _connect(options: dict[str, str]) -> StaticSettings | None:
    token = options.get("--token-id")
    if token is not None and not token.isdigit():
        return None
    endpoint = options.get("--endpoint")
    if endpoint is None and any(n in options for n in ("--region", "--profile", "--ca-bundle")):
        return None
    from strongroom.volume.aws_chain import static_settings

    return static_settings(
        endpoint_url=endpoint,
        region=options.get("--region"),
        profile=options.get("--profile"),
        ca_bundle=options.get("--ca-bundle"),
    )


def _fail(exc: BaseException) -> int:
    if isinstance(exc, OSError) and not isinstance(exc, StrongroomError):
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"error: {where}{exc.strerror or exc}\n")
    else:
        sys.stderr.write(f"error: {' '.join((str(exc) or type(exc).__name__).split())}\n")
    return 1


def run_pass(args: list[str]) -> int | None:
    """Run ``volume pass ARGS``; ``None`` when the typer command should run instead."""
    options = parse_args(args, ("device",))
    settings = None if options is None else _connect(options)
    if options is None or settings is None:
        return None
    from strongroom.volume.aws_json import AwsJsonKms
    from strongroom.volume.recover import recover_passphrase, region_hint

    token = options.get("--token-id")
    try:
        device = options["device"]
        keys = AwsJsonKms(settings, region_hint(device))
        try:
            passphrase, _ = recover_passphrase(keys, device, None if token is None else int(token))
        finally:
            keys.close()
    except (StrongroomError, OSError) as exc:
        return _fail(exc)
    from strongroom.volume.output import write_out

    return write_out(passphrase)


def run_unlock(args: list[str]) -> int | None:
    """Run ``volume unlock ARGS``; ``None`` when the typer command should run instead."""
    options = parse_args(args, ("device", "name"), FLAGS)
    settings = None if options is None else _connect(options)
    if options is None or settings is None:
        return None
    from strongroom.volume.aws_json import AwsJsonKms
    from strongroom.volume.recover import region_hint, unlock

    token = options.get("--token-id")
    try:
        device = options["device"]
        keys = AwsJsonKms(settings, region_hint(device))
        try:
            unlock(
                keys,
                device,
                options["name"],
                None if token is None else int(token),
                read_only="--read-only" in options,
            )
        finally:
            keys.close()
    except (StrongroomError, OSError) as exc:
        return _fail(exc)
    return 0
