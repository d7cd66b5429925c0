"""Durable, atomic file writes: a killed writer leaves nothing, not even a partial file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from strongroom.files import atomic_write


def test_the_file_appears_whole_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with atomic_write(target, ".tmp-") as sink:
        sink.write(b"a" * 100_000)
        assert not target.exists()
    assert target.read_bytes() == b"a" * 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_failure_leaves_the_old_file_and_no_part(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target, ".tmp-") as sink:
        sink.write(b"new, half")
        raise RuntimeError("stop")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_killed_writer_leaves_no_partial_file(tmp_path: Path) -> None:
    # The writer has written (and flushed) verified plaintext when SIGKILL arrives.
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from strongroom.files import atomic_write
        with atomic_write(Path({str(tmp_path / "plain.txt")!r}), ".tmp-") as sink:
            sink.write(b"secret plaintext " * 10000)
            sink.flush()
            os.fsync(sink.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False)
    assert done.returncode == -signal.SIGKILL
    if not hasattr(os, "O_TMPFILE"):
        pytest.skip("no O_TMPFILE on this platform: a named .part file is left")
    assert list(tmp_path.iterdir()) == []
