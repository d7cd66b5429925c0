"""What ``strongroom encrypt`` and ``decrypt`` do, without typer: files, progress, KMS.

The typer commands (:mod:`strongroom.cli.data`) and their fast start
(:mod:`strongroom.cli.data_fast`, tried before typer is imported) both call
:func:`encrypt_files` and :func:`decrypt_files`, so the two paths behave alike by
construction; the fast start only parses the arguments by hand. Nothing here imports
typer, rich (but for a progress bar on a large input), boto3 or botocore (but when the
AWS chain needs more than the environment: :func:`connect_quickly`).

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
from typing import TYPE_CHECKING, Any, BinaryIO

from strongroom.cli.fast_args import context_entries
from strongroom.crypto.stream import StreamHeader
from strongroom.crypto.stream_io import decrypt_file
from strongroom.data.kms_direct import direct_from_environment
from strongroom.data.object_names import caller_context_of, check_user_context, kms_context_of
from strongroom.data.objects import remaining_length
from strongroom.data.streams import encrypt_stream, stream_errors
from strongroom.errors import InvalidCiphertextError, ValidationError
from strongroom.files import atomic_write

if TYPE_CHECKING:
    from rich.progress import Progress

    from strongroom.cli.endpoint import ConnectArgs
    from strongroom.data.keys import DataKeyProvider
    from strongroom.data.kms_http import KmsHttpDataKeys

PROGRESS_MIN_BYTES = 16 << 20
"""Inputs at least this large get a progress bar (on a terminal, when stdout is not data)."""
COPY_BYTES = 1 << 20


def parse_context(entries: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; a malformed, repeated or reserved key: ValidationError."""
    return check_user_context(context_entries(entries))


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
    from strongroom.cli.output import stderr_console

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


def connect(connect_args: ConnectArgs) -> KmsHttpDataKeys:
    """The KMS client of a command (boto3: the whole AWS chain)."""
    from strongroom.data.kms_http import KmsHttpDataKeys

    return KmsHttpDataKeys.connect(**connect_args)


def connect_quickly(connect_args: ConnectArgs) -> DataKeyProvider:
    """The KMS client of ``encrypt``/``decrypt``: direct when the environment says all.

    :func:`~strongroom.data.kms_direct.direct_from_environment` needs no botocore, which
    is most of these commands' start-up time; otherwise boto3 and the full AWS chain.
    """
    direct = direct_from_environment(**connect_args)
    return direct if direct is not None else connect(connect_args)


def encrypt_files(
    source: str,
    dest: str,
    key: str,
    context: list[str] | None,
    chunk_size: int,
    connect_args: ConnectArgs,
) -> None:
    """``strongroom encrypt``: ``source`` sealed into ``dest`` under a new data key of ``key``.

    Raises :class:`~strongroom.errors.StrongroomError` or :class:`OSError` on failure.
    """
    entries = parse_context(context)
    keys = connect_quickly(connect_args)
    with counted_input(source, dest, "encrypting") as src, open_output(dest) as sink:
        encrypt_stream(src, sink, keys, key_id=key, context=entries, chunk_size=chunk_size)


def decrypt_files(
    source: str, dest: str, context: list[str] | None, connect_args: ConnectArgs
) -> None:
    """``strongroom decrypt``: ``source`` verified and opened into ``dest``.

    With ``context`` the stream's own encryption context must be exactly that. Raises
    :class:`~strongroom.errors.StrongroomError` or :class:`OSError` on failure.
    """
    expected = parse_context(context) if context else None
    keys = connect_quickly(connect_args)

    def unwrap(header: StreamHeader) -> bytes:
        found = kms_context_of(header.context)
        if expected is not None and caller_context_of(header.context) != expected:
            raise InvalidCiphertextError("The stream's encryption context is not the one given.")
        return keys.decrypt_data_key(header.wrapped_key, found, key_id=header.key_id)

    with (
        counted_input(source, dest, "decrypting") as src,
        open_output(dest) as sink,
        stream_errors(),
    ):
        decrypt_file(src, sink, unwrap)
