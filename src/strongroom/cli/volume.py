"""``strongroom volume``: LUKS2 volumes whose passphrase a KMS key wraps.

``format`` makes a LUKS2 volume with a Strongroom keyslot, ``bind`` adds one to an
existing volume, ``unlock`` maps it (``cryptsetup open``), ``pass`` prints the passphrase
(as ``clevis luks pass`` does), ``rewrap`` wraps it anew under the key's current version
or another key, ``shred`` wipes the keyslot and token (and can disable the key),
``status`` shows the tokens. The KMS is any AWS KMS API (a Strongroom server or AWS KMS)
with the usual endpoint options and AWS chain (see :mod:`strongroom.cli.data`).
``pass`` and ``unlock`` also have a fast start (:mod:`strongroom.cli.volume_fast`).
"""

from __future__ import annotations

import contextlib
import getpass
import re
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from strongroom.cli.context import JsonOption, cli_errors, fail, print_json, stdout_console
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice, endpoint_options
from strongroom.cli.fast_args import context_entries
from strongroom.cli.volume_fast import bound_line, shown_bound
from strongroom.errors import ValidationError
from strongroom.volume import lifecycle, recover
from strongroom.volume.kms import VolumeKeys, connect
from strongroom.volume.recover import Bound

with_kms_endpoint = endpoint_options(
    "KMS endpoint URL (default: $AWS_ENDPOINT_URL_KMS, then AWS KMS).",
    profile_help="Named AWS profile for the KMS credentials.",
    ca_bundle_help="CA certificates to verify the KMS endpoint (default: $AWS_CA_BUNDLE).",
)
"""The options of ``strongroom encrypt`` (kept here so this group starts without
``strongroom.data``)."""
KeyOption = Annotated[
    str,
    typer.Option("--key", "-k", help="KMS key id, ARN or alias.", show_default=False),
]
ContextOption = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        "-c",
        help="Extra encryption context entry KEY=VALUE (repeatable).",
        show_default=False,
    ),
]
DeviceArgument = Annotated[str, typer.Argument(help="LUKS2 block device or image file.")]
TokenOption = Annotated[
    int | None,
    typer.Option(
        "--token-id", min=0, help="The Strongroom token to use (default: any).", show_default=False
    ),
]
MAX_KEY_FILE_BYTES = 8 << 20
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(i?B)?", re.IGNORECASE)


def parse_context(entries: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; a malformed or repeated entry is a ValidationError."""
    return context_entries(entries)


def parse_size(text: str) -> int:
    """``1G``, ``512MiB``, ``1048576``: a size in bytes (powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValidationError(f"Not a size: {text!r} (use bytes or K, M, G, T).")
    power = " KMGT".index((match.group(2) or " ").upper())
    return int(match.group(1)) << (10 * power)


@contextlib.contextmanager
def kms_for(endpoint: EndpointChoice, default_region: str = "") -> Iterator[VolumeKeys]:
    """The key service of a command, closed at the end."""
    endpoint.require_url_for_the_rest()
    keys = connect(**endpoint.connect_kwargs(), default_region=default_region)
    try:
        yield keys
    finally:
        keys.close()


def report(device: str, bound: Bound, json_output: bool, what: str) -> None:
    """Print a token, as JSON or one line."""
    if json_output:
        print_json(shown_bound(device, bound))
    else:
        stdout_console().print(bound_line(what, device, bound))


@with_kms_endpoint
def format_command(
    device: DeviceArgument,
    key: KeyOption,
    context: ContextOption = None,
    size: Annotated[
        str | None,
        typer.Option(
            "--size",
            help="Create DEVICE as a sparse image file of this size (1G, 512M).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Format even if DEVICE holds LUKS or a filesystem.")
    ] = False,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Format DEVICE as LUKS2 with a random passphrase wrapped by KEY (keyslot 0 + token)."""
    with cli_errors():
        extra = parse_context(context)
        size_bytes = None if size is None else parse_size(size)
        with kms_for(endpoint) as keys:
            bound = lifecycle.format_volume(keys, device, key, extra, size=size_bytes, force=force)
    report(device, bound, json_output, "Formatted")


def read_existing(key_file: str | None) -> bytes:
    """An existing passphrase: from KEY_FILE (``-``: stdin) or a prompt on a terminal."""
    if key_file == "-":
        data = sys.stdin.buffer.read(MAX_KEY_FILE_BYTES + 1)
    elif key_file is not None:
        with open(key_file, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    elif sys.stdin.isatty():
        data = getpass.getpass("Existing LUKS passphrase: ").encode("utf-8")
    else:
        raise ValidationError("Give the existing passphrase with --key-file FILE (or - for stdin).")
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValidationError("The key file is larger than 8 MiB.")
    if not data:
        raise ValidationError("The existing passphrase is empty.")
    return data


@with_kms_endpoint
def bind_command(
    device: DeviceArgument,
    key: KeyOption,
    key_file: Annotated[
        str | None,
        typer.Option(
            "--key-file",
            help="File with an existing passphrase, - for stdin (default: prompt).",
            show_default=False,
        ),
    ] = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Add a Strongroom keyslot (and token) wrapped by KEY to an existing LUKS2 volume."""
    with cli_errors():
        extra = parse_context(context)
        existing = read_existing(key_file)
        with kms_for(endpoint) as keys:
            bound = lifecycle.bind_volume(keys, device, key, existing, extra)
    report(device, bound, json_output, "Bound")


@with_kms_endpoint
def unlock_command(
    device: DeviceArgument,
    name: Annotated[
        str, typer.Argument(help="Mapping name: the volume appears as /dev/mapper/NAME.")
    ],
    token_id: TokenOption = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Map the volume read-only.")
    ] = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Unwrap the passphrase at the KMS and open DEVICE as /dev/mapper/NAME."""
    with cli_errors(), kms_for(endpoint, recover.region_hint(device)) as keys:
        recover.unlock(keys, device, name, token_id, read_only)


@with_kms_endpoint
def pass_command(
    device: DeviceArgument,
    token_id: TokenOption = None,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Print the volume passphrase on stdout (no newline), as `clevis luks pass` does."""
    with cli_errors(), kms_for(endpoint, recover.region_hint(device)) as keys:
        passphrase, _ = recover.recover_passphrase(keys, device, token_id)
    sys.stdout.buffer.write(passphrase)
    sys.stdout.flush()


@with_kms_endpoint
def rewrap_command(
    device: DeviceArgument,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            "-k",
            help="Wrap under this KMS key (default: the same key, current version).",
            show_default=False,
        ),
    ] = None,
    token_id: TokenOption = None,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Wrap the passphrase anew (ReEncrypt) without touching the keyslot or the data."""
    with cli_errors(), kms_for(endpoint, recover.region_hint(device)) as keys:
        old, new = lifecycle.rewrap(keys, device, key, token_id)
    if json_output:
        print_json({**shown_bound(device, new), "PreviousKeyId": old.token.key_id})
    else:
        report(device, new, False, "Rewrapped")


@with_kms_endpoint
def shred_command(
    device: DeviceArgument,
    token_id: TokenOption = None,
    disable_key: Annotated[
        bool,
        typer.Option(
            "--disable-key",
            help="Also disable the KMS key (every volume under it stops unlocking).",
        ),
    ] = False,
    last_keyslot: Annotated[
        bool,
        typer.Option(
            "--last-keyslot", help="Allow wiping the last keyslot: crypto-erase the volume."
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Wipe the Strongroom keyslot and token: Strongroom can no longer unlock DEVICE."""
    if not yes:
        if not sys.stdin.isatty():
            fail("shred destroys a keyslot: confirm with --yes")
        typer.confirm(f"Wipe the Strongroom keyslot of {device}?", abort=True)
    with cli_errors():
        if disable_key:
            with kms_for(endpoint, recover.region_hint(device)) as keys:
                done = lifecycle.shred(
                    keys, device, token_id, disable_key=True, last_keyslot=last_keyslot
                )
        else:
            done = lifecycle.shred(None, device, token_id, last_keyslot=last_keyslot)
    if json_output:
        print_json(done)
    else:
        extra = " and disabled its key" if disable_key else ""
        stdout_console().print(
            f"Shredded {device}: wiped keyslot {done['Keyslot']}, "
            f"removed token {done['TokenId']}{extra}"
        )


@with_kms_endpoint
def status_command(
    device: DeviceArgument,
    check: Annotated[
        bool, typer.Option("--check", help="Also unwrap each token at the KMS and test it.")
    ] = False,
    json_output: JsonOption = False,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Show DEVICE's UUID, keyslots and tokens (with --check: whether each unlocks)."""
    with cli_errors():
        if check:
            with kms_for(endpoint, recover.region_hint(device)) as keys:
                shown = recover.status(device, keys)
        else:
            shown = recover.status(device)
    if json_output:
        print_json(shown)
        return
    console = stdout_console()
    console.print(f"{shown['Device']}: LUKS2, UUID {shown['Uuid']}, keyslots {shown['Keyslots']}")
    for token in shown["Tokens"]:
        line = f"  token {token['TokenId']}: {token['Type']}, keyslots {token['Keyslots']}"
        if "KeyId" in token:
            line += f", key {token['KeyId']}, tenant {token['Tenant']}"
        if token.get("Version") == 1:
            line += ", version 1 (no check: `volume rewrap` upgrades it)"
        if "Unlocks" in token:
            line += ", unlocks" if token["Unlocks"] else ", DOES NOT UNLOCK"
        if "Error" in token:
            line += f" ({token['Error']})"
        console.print(line, markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``volume`` group to the top-level app."""
    group = typer.Typer(
        help="LUKS2 volumes whose passphrase a KMS key wraps: format, unlock, rewrap, shred.",
        no_args_is_help=True,
        epilog="Examples:  strongroom volume format disk.img --size 1G --key alias/volumes   |"
        "   strongroom volume unlock /dev/sdb data   |   strongroom volume status /dev/sdb",
    )
    group.command(
        "format",
        epilog="Examples:  strongroom volume format /dev/sdb --key alias/acme-volumes -c pvc=db   |"
        "   strongroom volume format disk.img --size 1G -k alias/volumes --json",
    )(format_command)
    group.command(
        "unlock",
        epilog="Example:  strongroom volume unlock /dev/sdb data --endpoint https://kms:8443",
    )(unlock_command)
    group.command(
        "pass",
        epilog="Example:  strongroom volume pass /dev/sdb"
        " | cryptsetup open /dev/sdb data --key-file -",
    )(pass_command)
    group.command(
        "bind",
        epilog="Example:  strongroom volume bind /dev/sdb --key alias/volumes"
        " --key-file - < old.key",
    )(bind_command)
    group.command(
        "rewrap",
        epilog="Examples:  strongroom volume rewrap /dev/sdb   |   "
        "strongroom volume rewrap /dev/sdb --key alias/volumes-2026",
    )(rewrap_command)
    group.command(
        "shred",
        epilog="Examples:  strongroom volume shred /dev/sdb --yes   |   "
        "strongroom volume shred /dev/sdb --yes --disable-key",
    )(shred_command)
    group.command(
        "status",
        epilog="Example:  strongroom volume status /dev/sdb --check --json",
    )(status_command)
    app.add_typer(group, name="volume")
