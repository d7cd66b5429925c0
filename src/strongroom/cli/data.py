"""``strongroom encrypt`` / ``decrypt`` and ``strongroom objects``: encryption at rest.

Data keys come from the AWS KMS API over HTTP (:class:`~strongroom.data.KmsHttpDataKeys`),
so these commands work against a Strongroom server and against AWS KMS alike. Everything
not given on the command line comes from the standard AWS chain: credentials
(``AWS_ACCESS_KEY_ID``..., profiles), region (``AWS_DEFAULT_REGION``), endpoint
(``AWS_ENDPOINT_URL_KMS``) and CA bundle (``AWS_CA_BUNDLE``).

``-`` stands for stdin or stdout; an output file appears only complete. What the commands
do is :mod:`strongroom.cli.data_io`'s (typer-free), which their fast start
(:mod:`strongroom.cli.data_fast`) calls too; this module holds their typer options.
"""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.common import cli_errors
from strongroom.cli.data_io import (
    COPY_BYTES,
    counted_input,
    decrypt_files,
    encrypt_files,
    open_input,
    open_output,
    parse_context,
    progress_for,
)
from strongroom.cli.data_io import connect as connect_with
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice, endpoint_options
from strongroom.crypto.stream import DEFAULT_CHUNK_SIZE
from strongroom.data.kms_http import KmsHttpDataKeys

__all__ = [
    "COPY_BYTES",
    "ContextOption",
    "KeyOption",
    "connect",
    "counted_input",
    "open_input",
    "open_output",
    "parse_context",
    "progress_for",
    "with_kms_endpoint",
]

with_kms_endpoint = endpoint_options(
    "KMS endpoint URL (default: $AWS_ENDPOINT_URL_KMS, then AWS KMS).",
    profile_help="Named AWS profile for the KMS credentials.",
    ca_bundle_help="CA certificates to verify the KMS endpoint (default: $AWS_CA_BUNDLE).",
)
"""``--endpoint`` (any AWS KMS API), ``--region``, ``--profile``, ``--ca-bundle``."""
ContextOption = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        "-c",
        help="Encryption context entry KEY=VALUE (repeatable).",
        show_default=False,
    ),
]
KeyOption = Annotated[
    str,
    typer.Option("--key", "-k", help="KMS key id, ARN or alias.", show_default=False),
]


def connect(endpoint: EndpointChoice) -> KmsHttpDataKeys:
    """The KMS client of a command (boto3: the whole AWS chain)."""
    return connect_with(endpoint.connect_kwargs())


# -- encrypt / decrypt ------------------------------------------------------------------


@with_kms_endpoint
def encrypt_command(
    source: Annotated[str, typer.Argument(help="File to encrypt, or - for stdin.")],
    dest: Annotated[str, typer.Argument(help="Encrypted file to write, or - for stdout.")],
    key: KeyOption,
    context: ContextOption = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="Chunk size: a power of two, 64 KiB to 16 MiB.")
    ] = DEFAULT_CHUNK_SIZE,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Encrypt a file into a chunked stream under a fresh data key of a KMS key."""
    with cli_errors():
        encrypt_files(source, dest, key, context, chunk_size, endpoint.connect_kwargs())


@with_kms_endpoint
def decrypt_command(
    source: Annotated[str, typer.Argument(help="Encrypted file, or - for stdin.")],
    dest: Annotated[str, typer.Argument(help="File to write the plaintext to, or - for stdout.")],
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            "-c",
            help="Require exactly this encryption context: KEY=VALUE (repeatable).",
            show_default=False,
        ),
    ] = None,
    endpoint: EndpointChoice = NO_ENDPOINT,
) -> None:
    """Verify and decrypt a chunked stream (also a stored object's file)."""
    with cli_errors():
        decrypt_files(source, dest, context, endpoint.connect_kwargs())


def register(app: typer.Typer) -> None:
    """Add ``encrypt`` and ``decrypt`` to the top-level app (``objects``: data_objects)."""
    app.command(
        "encrypt",
        epilog="Examples:  strongroom encrypt --key alias/backups -c app=db dump.sql dump.sr   |"
        "   pg_dump db | strongroom encrypt -k alias/backups - - > dump.sr",
    )(encrypt_command)
    app.command(
        "decrypt",
        epilog="Examples:  strongroom decrypt dump.sr dump.sql   |   "
        "strongroom decrypt -c app=db - - < dump.sr | psql db",
    )(decrypt_command)
