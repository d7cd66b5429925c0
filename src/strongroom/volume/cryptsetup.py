"""``cryptsetup``, driven as a subprocess: every change to a LUKS2 header goes through it.

Passphrases reach cryptsetup on pipes only, never in argv (which ``ps`` shows) or in a
file: the first on stdin (``--key-file -``), a second one (``luksAddKey``'s new key) on
another pipe named ``/dev/fd/N``. Both pipes are written and closed before cryptsetup
starts (a passphrase is far below a pipe's capacity), so nothing can block.

The keyslots Strongroom adds use PBKDF2 with cryptsetup's minimum of 1000 iterations: their
passphrases are 256-bit random keys, which a slow KDF would not make any harder to guess,
while argon2id's defaults cost seconds and hundreds of MB per unlock.

``subprocess`` and ``contextlib`` are imported where a process is started: ``volume pass``
on a version-2 token starts none, and importing them would cost it about a seventh of its
CPU.

Exit statuses follow cryptsetup(8): 1 wrong parameters, 2 no permission (bad passphrase),
3 out of memory, 4 wrong device, 5 device busy.
"""

from __future__ import annotations

import json
import os

from strongroom.errors import IncorrectKeyError, KMSInternalError, StrongroomError, ValidationError

TYPE_CHECKING = False  # not typing's: this module is on the fast `volume pass` path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

CRYPTSETUP_ENV = "STRONGROOM_CRYPTSETUP"
"""Environment variable naming the cryptsetup binary (default: ``cryptsetup`` on PATH)."""
FAST_PBKDF = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
"""The keyslot KDF of Strongroom keyslots (see the module docstring)."""
TIMEOUT_SECONDS = 120.0
BAD_PASSPHRASE = 2


DM_CONTROL = "/dev/mapper/control"


def device_mapper_available(control: str = DM_CONTROL) -> bool:
    """Whether device-mapper works here, so ``cryptsetup open`` can map volumes.

    The control node may exist without the kernel driver behind it (a container, or a VM
    whose kernel lacks ``dm_mod``): opening it then fails with ``ENODEV``. Only a
    missing node or driver counts as unavailable; a permission error is left for
    cryptsetup to report.
    """
    try:
        fd = os.open(control, os.O_RDWR)
    except PermissionError:
        return True
    except OSError:
        return False
    os.close(fd)
    return True


def cryptsetup_binary() -> str:
    """The cryptsetup to run: ``$STRONGROOM_CRYPTSETUP`` or the one on PATH."""
    named = os.environ.get(CRYPTSETUP_ENV)
    if named:
        return named
    search = [*os.environ.get("PATH", os.defpath).split(os.pathsep), "/usr/sbin", "/sbin"]
    candidates = (os.path.join(folder, "cryptsetup") for folder in search if folder)
    found = next((c for c in candidates if os.access(c, os.X_OK) and os.path.isfile(c)), None)
    if found is None:
        raise ValidationError(
            "cryptsetup is not installed (Debian/Ubuntu: apt-get install cryptsetup-bin)."
        )
    return found


class SecretPipe:
    """A pipe holding ``secret``: ``with SecretPipe(secret) as fd`` gives its read end.

    The write end is closed before the block, the read end at its end. A class rather than
    ``contextlib.contextmanager``: ``volume pass`` loads this module but starts no
    process, and ``contextlib`` is the only thing it would import for it.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._read_end = -1

    def __enter__(self) -> int:
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, self._secret)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._read_end = read_end
        return read_end

    def __exit__(self, *exc: object) -> None:
        os.close(self._read_end)


def run(
    args: Sequence[str],
    *,
    stdin: bytes = b"",
    extra_secret: bytes | None = None,
    what: str = "cryptsetup",
) -> str:
    """Run ``cryptsetup ARGS``; return its stdout; raise a Strongroom error on failure.

    ``stdin`` goes on stdin; ``extra_secret`` on a pipe whose path replaces the argument
    ``"{fd}"`` in ``args``. A bad passphrase (status 2) is an
    :class:`~strongroom.errors.IncorrectKeyError`, wrong input (1, 4) a
    :class:`~strongroom.errors.ValidationError`, anything else a
    :class:`~strongroom.errors.KMSInternalError`; all carry cryptsetup's own message.
    """
    import contextlib
    import subprocess

    binary = cryptsetup_binary()
    with contextlib.ExitStack() as stack:
        pass_fds: tuple[int, ...] = ()
        argv = list(args)
        if extra_secret is not None:
            fd = stack.enter_context(SecretPipe(extra_secret))
            pass_fds = (fd,)
            argv = [f"/dev/fd/{fd}" if arg == "{fd}" else arg for arg in argv]
        try:
            done = subprocess.run(  # noqa: S603 - fixed binary, our own arguments
                [binary, *argv],
                input=stdin,
                capture_output=True,
                pass_fds=pass_fds,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise KMSInternalError(f"{what}: cryptsetup did not finish in time.") from None
    if done.returncode == 0:
        return done.stdout.decode("utf-8", "replace")
    raise failure(done.returncode, done.stderr.decode("utf-8", "replace"), what)


def failure(status: int, stderr: str, what: str) -> StrongroomError:
    """The Strongroom error for a cryptsetup exit ``status`` and its stderr."""
    message = " ".join(stderr.split()) or f"exit status {status}"
    text = f"{what}: cryptsetup: {message}"
    if status == BAD_PASSPHRASE:
        return IncorrectKeyError(text)
    if status in (1, 4, 5):
        return ValidationError(text)
    return KMSInternalError(text)


def luks_format(device: str, uuid: str, passphrase: bytes) -> None:
    """``luksFormat --type luks2 --uuid UUID`` with ``passphrase`` in keyslot 0 (fast PBKDF)."""
    run(
        [
            "luksFormat",
            "--batch-mode",
            "--type",
            "luks2",
            "--uuid",
            uuid,
            "--key-slot",
            "0",
            *FAST_PBKDF,
            "--key-file",
            "-",
            device,
        ],
        stdin=passphrase,
        what="format",
    )


def add_key(device: str, existing: bytes, new: bytes, slot: int) -> None:
    """``luksAddKey``: a keyslot ``slot`` for ``new``, allowed by the ``existing`` passphrase."""
    run(
        [
            "luksAddKey",
            "--batch-mode",
            *FAST_PBKDF,
            "--key-file",
            "-",
            "--new-key-slot",
            str(slot),
            device,
            "{fd}",
        ],
        stdin=existing,
        extra_secret=new,
        what="bind",
    )


def test_passphrase(device: str, passphrase: bytes, slot: int | None = None) -> None:
    """``open --test-passphrase``: raise unless ``passphrase`` opens ``slot`` (or any slot)."""
    slot_args = [] if slot is None else ["--key-slot", str(slot)]
    run(
        ["open", "--test-passphrase", *slot_args, "--key-file", "-", device],
        stdin=passphrase,
        what="test passphrase",
    )


class PendingTest:
    """``open --test-passphrase`` started before its passphrase is known.

    cryptsetup loads, locks and reads the header while the KMS call is on the wire; the
    passphrase then goes to its stdin (:meth:`finish`), or the process is killed
    (:meth:`cancel`). Saves a process start on the unlock path.
    """

    def __init__(self, device: str, slot: int) -> None:
        import subprocess

        args = ["open", "--test-passphrase", "--key-slot", str(slot), "--key-file", "-", device]
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
            [cryptsetup_binary(), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def finish(self, passphrase: bytes) -> None:
        """Hand over the passphrase; raise unless it opens the keyslot."""
        import subprocess

        try:
            _, err = self._process.communicate(passphrase, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise KMSInternalError("test passphrase: cryptsetup did not finish in time.") from None
        if self._process.returncode != 0:
            raise failure(
                self._process.returncode, err.decode("utf-8", "replace"), "test passphrase"
            )

    def cancel(self) -> None:
        """Stop the process (the passphrase never came)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()


def open_device(
    device: str, name: str, passphrase: bytes, slot: int, options: Sequence[str] = ()
) -> None:
    """``open --type luks2 DEVICE NAME``: map the volume as ``/dev/mapper/NAME``."""
    args = ["open", "--type", "luks2", "--key-slot", str(slot), *options, "--key-file", "-"]
    run(
        [*args, device, name],
        stdin=passphrase,
        what="unlock",
    )


def import_token(
    device: str, token: dict[str, Any], token_id: int, *, replace: bool = False
) -> None:
    """``token import --token-id N``: a new token N, or (``replace``) token N replaced.

    A replacement is one header update: readers see the old token or the new one.
    """
    args = ["token", "import", "--json-file", "-", "--token-id", str(token_id)]
    if replace:
        args.append("--token-replace")
    data = json.dumps(token, separators=(",", ":")).encode("utf-8")
    run([*args, device], stdin=data, what="token import")


def remove_token(device: str, token_id: int) -> None:
    """``token remove --token-id N``."""
    run(["token", "remove", "--token-id", str(token_id), device], what="token remove")


def kill_slot(device: str, slot: int) -> None:
    """``luksKillSlot --batch-mode``: wipe keyslot ``slot`` (no other passphrase asked)."""
    run(["luksKillSlot", "--batch-mode", device, str(slot)], what="wipe keyslot")
