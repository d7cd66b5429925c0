"""The checkpoint file beside the store, and the log line of every checkpoint.

``DATA_DIR/audit-checkpoint.json`` holds one signed line (see
:mod:`strongroom.kms.audit_checkpoint`): the newest checkpoint any process of this data
directory wrote. Writers take ``audit-checkpoint.lock`` (an ``flock``), read the file, and
replace it (temporary file, fsync, rename, fsync of the directory) only with a newer
checkpoint, so worker processes never race it backwards. Each written checkpoint is also
logged, one JSON line on logger ``strongroom.audit.checkpoint``, for log shippers.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from strongroom.files import atomic_write
from strongroom.kms.audit_checkpoint import (
    Checkpoint,
    CheckpointInvalid,
    parse_checkpoint_line,
)
from strongroom.ports.audit_chain import AuditChain

CHECKPOINT_FILE = "audit-checkpoint.json"
LOCK_FILE = "audit-checkpoint.lock"
CHECKPOINT_LOGGER = "strongroom.audit.checkpoint"
_MAX_FILE_BYTES = 64 * 1024

_log = logging.getLogger(CHECKPOINT_LOGGER)
_problems = logging.getLogger("strongroom.audit")


def read_checkpoint_file(path: Path, chain: AuditChain) -> Checkpoint | None:
    """The newest valid checkpoint in a file of checkpoint lines (or a log), or ``None``.

    Raises :class:`CheckpointInvalid` if the file holds lines that look like checkpoints
    but none is valid for ``chain`` (forged, or of another store), and ``OSError`` if it
    cannot be read.
    """
    newest: Checkpoint | None = None
    problem: CheckpointInvalid | None = None
    with open(path, "rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", "replace")
            if '"auditCheckpoint"' not in line:
                continue
            try:
                found = parse_checkpoint_line(line, chain)
            except CheckpointInvalid as exc:
                problem = exc
                continue
            if newest is None or found.seq > newest.seq:
                newest = found
    if newest is None and problem is not None:
        raise problem
    return newest


class CheckpointFile:
    """A :class:`~strongroom.kms.audit_checkpoint.CheckpointSink`: the file, and the log."""

    def __init__(self, data_dir: Path, chain: AuditChain) -> None:
        self.path = data_dir / CHECKPOINT_FILE
        self._lock_path = data_dir / LOCK_FILE
        self._chain = chain
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime ns, size) read
        self._newest: Checkpoint | None = None

    def __repr__(self) -> str:
        return f"CheckpointFile({str(self.path)!r})"

    def read(self) -> Checkpoint | None:
        """The checkpoint in the file now (``None`` if there is no file).

        Raises :class:`CheckpointInvalid` for a file whose checkpoint is not valid for
        this store, ``OSError`` for one that cannot be read.
        """
        try:
            if self.path.stat().st_size > _MAX_FILE_BYTES:
                raise CheckpointInvalid(f"{self.path} is larger than a checkpoint file can be")
            return read_checkpoint_file(self.path, self._chain)
        except FileNotFoundError:
            return None

    def newest(self) -> Checkpoint | None:
        """The file's checkpoint, read again only when the file changed; ``None`` if unusable."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._newest
        except OSError:
            return self._newest
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            self._seen = seen
            try:
                found = self.read()
            except (CheckpointInvalid, OSError) as exc:
                _problems.error("ignoring the audit checkpoint file %s: %s", self.path, exc)
                found = None
            if found is not None and (self._newest is None or found.seq >= self._newest.seq):
                self._newest = found
        return self._newest

    def publish(self, checkpoint: Checkpoint, *, replace_newer: bool = False) -> bool:
        """Write ``checkpoint`` if it is newer than the file's (or ``replace_newer``); log it.

        Returns whether the file was written. A failure to write is logged, not raised:
        the log line still carries the checkpoint.
        """
        line = checkpoint.signed_line(self._chain)
        written = False
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    current = self.read()
                    foreign = False
                except CheckpointInvalid as exc:
                    # evidence, not garbage: only the operator's acceptance replaces it
                    current, foreign = None, not replace_newer
                    if foreign:
                        _problems.error("not replacing the checkpoint file %s: %s", self.path, exc)
                if not foreign and (
                    replace_newer or current is None or checkpoint.seq > current.seq
                ):
                    with atomic_write(self.path, prefix=".audit-checkpoint-") as sink:
                        sink.write(line.encode("ascii") + b"\n")
                    written = True
            finally:
                os.close(fd)  # closing drops the flock
        except OSError as exc:
            _problems.error("cannot write the audit checkpoint file %s: %s", self.path, exc)
        newer = self._newest is None or checkpoint.seq > self._newest.seq
        if written or replace_newer or newer:
            self._newest = checkpoint
        _log.info("%s", line)
        return written
