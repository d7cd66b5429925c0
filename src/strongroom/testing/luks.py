"""LUKS image files for tests, made and read by Debian's ``cryptsetup`` itself.

::

    image = luks_image(tmp_path / "disk.img", b"passphrase")
    assert volume_key(image, b"passphrase") == volume_key(image, other_passphrase)

:func:`volume_key` (``luksDump --dump-volume-key``) is the oracle of which volume key a
passphrase reaches; :func:`digest` tells whether a failed command left an image as it was.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

FAST_PBKDF = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
IMAGE_BYTES = 32 << 20


def cryptsetup_missing() -> bool:
    """Whether cryptsetup is absent (scripts/test.sh installs Debian's cryptsetup-bin)."""
    return shutil.which("cryptsetup") is None and not Path("/usr/sbin/cryptsetup").exists()


def run(
    args: list[str], *, stdin: bytes = b"", env: dict[str, str] | None = None, expect: int = 0
) -> subprocess.CompletedProcess[bytes]:
    """Run a command; check its exit status and that it printed no Python traceback."""
    done = subprocess.run(  # noqa: S603 - test commands
        args, input=stdin, capture_output=True, env=env, timeout=120, check=False
    )
    assert done.returncode == expect, (args, done.returncode, done.stderr.decode())
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    return done


def luks_image(path: Path, passphrase: bytes, *extra: str, luks_type: str = "luks2") -> Path:
    """A LUKS image file made by cryptsetup, ``passphrase`` in keyslot 0 (fast PBKDF)."""
    with open(path, "wb") as handle:
        handle.truncate(IMAGE_BYTES)
    run(
        [
            "cryptsetup",
            "luksFormat",
            "--batch-mode",
            "--type",
            luks_type,
            *FAST_PBKDF,
            *extra,
            "--key-file",
            "-",
            str(path),
        ],
        stdin=passphrase,
    )
    return path


def volume_key(device: Path, passphrase: bytes) -> bytes:
    """The volume key cryptsetup reaches with ``passphrase`` (``luksDump --dump-volume-key``)."""
    out = run(
        [
            "cryptsetup",
            "luksDump",
            "--batch-mode",
            "--dump-volume-key",
            "--key-file",
            "-",
            str(device),
        ],
        stdin=passphrase,
    ).stdout.decode()
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("MK dump:"))
    hexes = lines[start].split(":", 1)[1].split()
    for line in lines[start + 1 :]:
        if ":" in line or not line.strip():
            break
        hexes += line.split()
    return bytes.fromhex("".join(hexes))


def digest(path: Path) -> str:
    """SHA-256 of a whole image file (is it unchanged?)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
