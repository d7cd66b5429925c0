"""``strongroom encrypt`` / ``decrypt`` and ``strongroom objects``: encryption at rest.

Data keys come from the AWS KMS API over HTTP (:class:`~strongroom.data.KmsHttpDataKeys`),
so these commands work against a Strongroom server and against AWS KMS alike. Everything
not given on the command line comes from the standard AWS chain: credentials
(``AWS_ACCESS_KEY_ID``..., profiles), region (``AWS_DEFAULT_REGION``), endpoint
(``AWS_ENDPOINT_URL_KMS``) and CA bundle (``AWS_CA_BUNDLE``).

``-`` stands for stdin or stdout. An output file appears only complete: data goes to a
temporary file beside it that is renamed at the end, and removed if anything fails, so
a failed decrypt leaves no output behind. (On stdout, only chunks that verified are
written, but a failure part-way leaves a prefix: check the exit status.)
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from strongroom.cli.common import cli_errors, stderr_console
from strongroom.cli.endpoint import NO_ENDPOINT, EndpointChoice, endpoint_options
from strongroom.crypto.stream import DEFAULT_CHUNK_SIZE, StreamHeader
from strongroom.crypto.stream_io import decrypt_file
from strongroom.data.keys import DataKeyProvider
from strongroom.data.kms_direct import direct_from_environment
from strongroom.data.kms_http import KmsHttpDataKeys
from strongroom.data.objects import (
    caller_context_of,
    check_user_context,
    kms_context_of,
    remaining_length,
)
from strongroom.data.streams import encrypt_stream, stream_errors
from strongroom.errors import InvalidCiphertextError, ValidationError
from strongroom.files import atomic_write

if TYPE_CHECKING:
    from rich.progress import Progress

PROGRESS_MIN_BYTES = 16 << 20
"""Inputs at least this large get a progress bar (on a terminal, when stdout is not data)."""
COPY_BYTES = 1 << 20

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


def parse_context(entries: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; a malformed or repeated entry is a ValidationError."""
    context: dict[str, str] = {}
    for entry in entries or ():
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise ValidationError(f"A context entry is KEY=VALUE, not {entry!r}.")
        if key in context:
            raise ValidationError(f"The context key {key!r} is given twice.")
        context[key] = value
    return check_user_context(context)


def connect(endpoint: EndpointChoice) -> KmsHttpDataKeys:
    """The KMS client of a command (boto3: the whole AWS chain)."""
    return KmsHttpDataKeys.connect(**endpoint.connect_kwargs())


def connect_quickly(endpoint: EndpointChoice) -> DataKeyProvider:
    """The KMS client of ``encrypt``/``decrypt``: direct when the environment says all.

    :func:`~strongroom.data.kms_direct.direct_from_environment` needs no botocore, which
    is most of these commands' start-up time; otherwise boto3 and the full AWS chain.
    """
    direct = direct_from_environment(**endpoint.connect_kwargs())
    return direct if direct is not None else connect(endpoint)


@contextlib.contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """``path`` opened for reading, or stdin for ``-``."""
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as src:
        yield src


@contextlib.contextmanager
def terminate_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM unwinds the stack (exit status 143) like Ctrl-C does.

    So ``finally`` clauses run and a temporary output file is removed rather than left
    behind by the default action (end the process at once). Main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def open_output(path: str) -> Iterator[BinaryIO]:
    """Stdout for ``-``; else a temporary file renamed to ``path`` when the block succeeds.

    The file is fsynced before the rename and the directory after it; on any failure
    (SIGTERM and Ctrl-C included) the temporary file is removed and ``path`` is left as
    it was.
    """
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise ValidationError(f"{path}: is a directory.")
    with terminate_unwinds(), atomic_write(target, prefix=f".{target.name}.") as sink:
        yield sink


class Counted:
    """A binary reader that advances a progress bar by what it reads."""

    def __init__(self, src: Any, progress: Progress | None) -> None:
        self._src = src
        self._progress = progress
        self._task = None if progress is None else progress.add_task("", total=None)

    def set_total(self, total: int | None) -> None:
        """Set the bar's total (bytes)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def fileno(self) -> int:
        """The source's descriptor (so its size can be known)."""
        return int(self._src.fileno())

    def tell(self) -> int:
        """The source's position."""
        return int(self._src.tell())

    def readinto(self, buffer: Any, /) -> int:
        """Read into ``buffer`` and count it."""
        got = int(self._src.readinto(buffer) or 0)
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, got)
        return got

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes and count them."""
        data: bytes = self._src.read(size)
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, len(data))
        return data


@contextlib.contextmanager
def progress_for(size: int | None, out: str, label: str) -> Iterator[Progress | None]:
    """A transient progress bar on stderr for a large input, if it would be seen."""
    if size is None or size < PROGRESS_MIN_BYTES or out == "-":
        yield None
        return
    console = stderr_console()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield progress


@contextlib.contextmanager
def counted_input(path: str, out: str, label: str) -> Iterator[Counted]:
    """Open ``path`` and count what is read from it on a progress bar when fitting."""
    with open_input(path) as src:
        size = remaining_length(src)
        with progress_for(size, out, label) as progress:
            counted = Counted(src, progress)
            counted.set_total(size)
            yield counted


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
        entries = parse_context(context)
        keys = connect_quickly(endpoint)
        with counted_input(source, dest, "encrypting") as src, open_output(dest) as sink:
            encrypt_stream(src, sink, keys, key_id=key, context=entries, chunk_size=chunk_size)


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
        expected = parse_context(context) if context else None
        keys = connect_quickly(endpoint)

        def unwrap(header: StreamHeader) -> bytes:
            found = kms_context_of(header.context)
            if expected is not None and caller_context_of(header.context) != expected:
                raise InvalidCiphertextError(
                    "The stream's encryption context is not the one given."
                )
            return keys.decrypt_data_key(header.wrapped_key, found, key_id=header.key_id)

        with (
            counted_input(source, dest, "decrypting") as src,
            open_output(dest) as sink,
            stream_errors(),
        ):
            decrypt_file(src, sink, unwrap)


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
