"""``strongroom volume pass`` and ``unlock`` without typer, rich or boto3: the fast start.

Recovering a volume key is on the boot path and is compared with ``clevis luks pass``;
building the full command line (typer, rich and every command module) costs about 0.9 s
here and a boto3 KMS client another 0.5 s. :func:`strongroom.cli.main.main` hands
``volume pass ...`` to :func:`run_pass` first (``volume unlock ...`` to
:func:`run_unlock`), which parses the same arguments (by
hand: argparse costs milliseconds too), reads the header, calls ``Decrypt`` through
:class:`~strongroom.volume.aws_json.AwsJsonKms` and prints the passphrase. ``volume
rewrap ...`` (:func:`run_rewrap`) likewise calls :func:`strongroom.volume.lifecycle.rewrap`
and prints what the typer command prints. Whenever it
cannot (help asked, arguments it does not know, an AWS chain that needs botocore) it
returns ``None`` and the typer command, which calls the same
:mod:`~strongroom.volume.recover` functions, runs instead; so behaviour and
messages are the same on both paths.
"""

from __future__ import annotations

from strongroom.cli.failure import report
from strongroom.cli.fast_args import parse_args as parse_options
from strongroom.cli.fast_args import spelled
from strongroom.errors import StrongroomError

TYPE_CHECKING = False  # not typing's: this module is the fast start
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from strongroom.volume.aws_chain import StaticSettings
    from strongroom.volume.kms import VolumeKeys
    from strongroom.volume.recover import Bound

OPTIONS = ("--token-id", "--endpoint", "--region", "--profile", "--ca-bundle")
"""The options of ``volume pass`` and ``unlock`` that take a value, as typer names them."""
FLAGS = ("--read-only",)
"""Options without a value (``unlock`` only)."""
REWRAP_OPTIONS = {**spelled(*OPTIONS), "--key": "--key", "-k": "--key"}
"""The options of ``volume rewrap`` that take a value."""


def parse_args(
    args: list[str],
    positionals: tuple[str, ...],
    flags: tuple[str, ...] = (),
    options: Mapping[str, str] | None = None,
) -> dict[str, str] | None:
    """``{"device": ..., "--endpoint": ...}``, or ``None`` for anything unusual.

    :func:`strongroom.cli.fast_args.parse_args` over :data:`OPTIONS` (or ``options``),
    ``flags`` (value ``""``) and ``positionals``; no option repeats.
    """
    parsed = parse_options(
        args, positionals, spelled(*OPTIONS) if options is None else options, spelled(*flags)
    )
    if parsed is None:
        return None
    return {name: values[0] if values else "" for name, values in parsed.items()}


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


def _parsed(
    args: list[str],
    positionals: tuple[str, ...],
    flags: tuple[str, ...] = (),
    options: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], StaticSettings] | None:
    """The arguments and the static AWS settings, or ``None``: the typer command runs."""
    parsed = parse_args(args, positionals, flags, options)
    settings = None if parsed is None else _connect(parsed)
    return None if parsed is None or settings is None else (parsed, settings)


def _run(
    options: dict[str, str],
    settings: StaticSettings,
    work: Callable[[VolumeKeys, str, int | None], object],
) -> int:
    """``work(keys, device, token_id)`` with a KMS client: 0, or the failure's exit status."""
    from strongroom.volume.aws_json import AwsJsonKms
    from strongroom.volume.recover import region_hint

    token = options.get("--token-id")
    try:
        device = options["device"]
        keys = AwsJsonKms(settings, region_hint(device))
        try:
            work(keys, device, None if token is None else int(token))
        finally:
            keys.close()
    except (StrongroomError, OSError) as exc:
        return report(exc)
    return 0


def run_pass(args: list[str]) -> int | None:
    """Run ``volume pass ARGS``; ``None`` when the typer command should run instead."""
    given = _parsed(args, ("device",))
    if given is None:
        return None
    from strongroom.volume.recover import recover_passphrase

    found: list[bytes] = []
    status = _run(
        *given, lambda keys, device, token: found.append(recover_passphrase(keys, device, token)[0])
    )
    if status:
        return status
    from strongroom.volume.output import write_out

    return write_out(found[0])


def run_unlock(args: list[str]) -> int | None:
    """Run ``volume unlock ARGS``; ``None`` when the typer command should run instead."""
    given = _parsed(args, ("device", "name"), FLAGS)
    if given is None:
        return None
    from strongroom.volume.recover import unlock

    options = given[0]
    return _run(
        *given,
        lambda keys, device, token: unlock(
            keys, device, options["name"], token, read_only="--read-only" in options
        ),
    )


def shown_bound(device: str, bound: Bound) -> dict[str, Any]:
    """The ``--json`` form of a token (never the wrapped key)."""
    return {
        "Device": device,
        "TokenId": bound.token_id,
        "Keyslot": bound.token.keyslot,
        "KeyId": bound.token.key_id,
        "Tenant": bound.token.tenant,
        "VolumeUuid": bound.token.volume,
        "EncryptionContext": bound.token.context,
    }


def bound_line(what: str, device: str, bound: Bound) -> str:
    """The one line the volume commands print about a token."""
    return (
        f"{what} {device}: UUID {bound.token.volume}, keyslot {bound.token.keyslot}, "
        f"token {bound.token_id}, key {bound.token.key_id}"
    )


def run_rewrap(args: list[str]) -> int | None:
    """Run ``volume rewrap ARGS``; ``None`` when the typer command should run instead."""
    given = _parsed(args, ("device",), ("--json",), REWRAP_OPTIONS)
    if given is None:
        return None
    from strongroom.volume.lifecycle import rewrap

    options = given[0]
    done: list[tuple[Bound, Bound]] = []
    status = _run(
        *given,
        lambda keys, device, token: done.append(rewrap(keys, device, options.get("--key"), token)),
    )
    if status:
        return status
    from strongroom.cli.output import print_json, print_line

    (old, new), device = done[0], options["device"]
    if "--json" in options:
        print_json({**shown_bound(device, new), "PreviousKeyId": old.token.key_id})
    else:
        print_line(bound_line("Rewrapped", device, new))
    return 0
